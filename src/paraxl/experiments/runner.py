"""Run an experiment table: train each (variant, seed), evaluate it, keep one record per run.

Layout under ``runs_dir/<table>/<variant>/seed-<S>/``: the training output (``final/`` is
deleted after evaluation unless ``keep_models``; a 118M-parameter folder is ~470 MB), the
evaluation folder ``eval/`` and ``record.json``. A run whose ``record.json`` exists is not
run again, so an interrupted table resumes where it stopped. A record whose evaluation ran every
task of the evaluation profile (``eval: {tasks: profile}``) carries its columns under ``profile``
(column key -> points, None where missing), read from the full result documents.
"""

from __future__ import annotations

import json
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from paraxl.errors import InputError
from paraxl.evaluation.profile import PROFILE_TASKS, profile_values
from paraxl.evaluation.session import EvalRequest, run_evaluation
from paraxl.experiments.records import RunRecord, summarize_task
from paraxl.experiments.tables import Table, Variant
from paraxl.io.atomic import write_json_atomic
from paraxl.training.config import TrainConfig, upgrade_record

Log = Callable[[str], None]


def run_table(
    table: Table,
    runs_dir: Path,
    data_dir: Path,
    *,
    only: set[str] | None = None,
    seeds: set[int] | None = None,
    keep_models: bool = False,
    reported: list[dict[str, Any]] | None = None,
    log: Log = print,
) -> list[dict[str, Any]]:
    """Every run of ``table`` (or of the variants in ``only``, at the seeds in ``seeds``); returns their records.

    Runs left out by ``only`` or ``seeds`` but finished earlier are read back, so the report
    covers every run done so far, not just the ones started by this call. ``reported`` are the
    records of the table's earlier report: a run left out whose folder is gone (a fresh clone
    has the committed report but not ``runs/``) keeps its reported record, so rewriting the
    report never drops a measured row, unless the table has since changed that run's config.
    """
    earlier = {(record["variant"], record["seed"]): record for record in reported or []}
    records = []
    for variant in table.spec.variants:
        for seed in table.seeds(variant):
            folder = run_folder(runs_dir, table.spec.name, variant.name, seed)
            wanted = (only is None or variant.name in only) and (seeds is None or seed in seeds)
            if not wanted and not (folder / "record.json").is_file():
                kept = _still_described(table, variant, seed, folder, earlier.get((variant.name, seed)), log)
                if kept is not None:
                    records.append(kept)
                continue
            records.append(run_one(table, variant, seed, runs_dir, data_dir, keep_models=keep_models, log=log))
    return records


def run_folder(runs_dir: Path, table: str, variant: str, seed: int) -> Path:
    """``runs_dir/<table>/<variant>/seed-<S>``: one run's training output, evaluation and record."""
    return runs_dir / table / variant / f"seed-{seed}"


def _still_described(
    table: Table, variant: Variant, seed: int, folder: Path, record: dict[str, Any] | None, log: Log
) -> dict[str, Any] | None:
    """``record`` (from the earlier report) if the table still describes its run, else None."""
    if record is None:
        return None
    if _normalized(record.get("config")) != table.config(variant, seed, folder / "train").model_dump(mode="json"):
        log(f"{variant.name} seed {seed}: the earlier report's record has another config; dropped")
        return None
    log(f"{variant.name} seed {seed}: no run folder, keeping the earlier report's record")
    return record


def run_one(
    table: Table,
    variant: Variant,
    seed: int,
    runs_dir: Path,
    data_dir: Path,
    *,
    keep_models: bool = False,
    log: Log = print,
) -> dict[str, Any]:
    folder = run_folder(runs_dir, table.spec.name, variant.name, seed)
    record_path = folder / "record.json"
    if record_path.is_file():
        log(f"{variant.name} seed {seed}: done before, reading {record_path}")
        return dict(json.loads(record_path.read_text(encoding="utf-8")))
    config = table.config(variant, seed, folder / "train")
    # no record: never finished. Start it over rather than resume a checkpoint that an
    # edited table may no longer describe (a run is a pure function of config and seed).
    shutil.rmtree(folder / "train", ignore_errors=True)
    began = time.perf_counter()
    training: dict[str, Any] | None = None
    soup: dict[str, Any] | None = None
    if variant.trainer == "none":
        model = config.model.name
        log(f"{variant.name}: evaluating {model} as it is")
    elif variant.trainer == "soup":
        log(f"{variant.name}: averaging {variant.soup_of} at seeds {variant.soup_seeds}")
        soup = _soup(table, variant, runs_dir, folder / "train" / "final")
        model = str(folder / "train" / "final")
    else:
        log(f"{variant.name} seed {seed}: training ({variant.trainer})")
        training = _train(variant, config, data_dir, folder / "train")
        model = str(folder / "train" / "final")
    request = EvalRequest(
        model=model,
        tasks=table.spec.eval.tasks,
        protocol=table.spec.eval.protocol,
        data_dir=data_dir,
        output_dir=folder / "eval",
        batch_size=table.spec.eval.batch_size,
        use_cache=variant.trainer == "none",  # trained weights are seen once: do not fill the cache
    )
    outcome = run_evaluation(request, log=lambda message: None)
    record = {
        "table": table.spec.name,
        "variant": variant.name,
        "trainer": variant.trainer,
        "seed": seed,
        "config": config.model_dump(mode="json"),
        "training": training,
        "soup": soup,
        "scores": {result.task.name: summarize_task(result) for result in outcome.results},
        "model_fingerprint": outcome.results[0].model.fingerprint if outcome.results else None,
        "wall_seconds": time.perf_counter() - began,
    }
    if set(PROFILE_TASKS) <= {result.task.name for result in outcome.results}:
        record["profile"] = profile_values(outcome.results)  # set-level numbers the summaries above drop
    write_json_atomic(record_path, record, indent=2, trailing_newline=False)
    if variant.trainer != "none" and not keep_models:
        shutil.rmtree(folder / "train" / "final", ignore_errors=True)
        shutil.rmtree(folder / "train" / "checkpoints", ignore_errors=True)
        shutil.rmtree(folder / "train" / "best", ignore_errors=True)
    log(f"{variant.name} seed {seed}: {headline(record)} ({record['wall_seconds']:.0f} s)")
    return record


def _normalized(config: Any) -> Any:
    """A recorded config with the defaults of fields added since filled in and the keys that did not apply
    to its loss / data kind dropped (see ``upgrade_record``; unparseable: as it is)."""
    try:
        return TrainConfig.model_validate(upgrade_record(config)).model_dump(mode="json")
    except ValidationError:
        return config


def _train(variant: Variant, config: Any, data_dir: Path, output: Path) -> dict[str, Any]:
    """Train one run; its summary (steps, time, examples/s, data file hashes) goes into the record."""
    if variant.trainer == "sentence-transformers":
        from paraxl.experiments.st_baseline import train_st_mnrl

        return train_st_mnrl(config, data_dir, output)
    from paraxl.training.trainer import train

    return asdict(train(config, data_dir=data_dir, overwrite=True, show_progress=False))


def _soup(table: Table, variant: Variant, runs_dir: Path, output: Path) -> dict[str, Any]:
    """Average the kept final models of ``variant.soup_of`` at ``variant.soup_seeds`` into ``output``."""
    from paraxl.loading.soup import average_models

    assert variant.soup_of is not None and variant.soup_seeds is not None  # checked by Variant
    sources = [
        run_folder(runs_dir, table.spec.name, variant.soup_of, seed) / "train" / "final" for seed in variant.soup_seeds
    ]
    missing = [seed for seed, source in zip(variant.soup_seeds, sources, strict=True) if not source.is_dir()]
    if missing:
        seeds = ",".join(map(str, missing))
        raise InputError(
            f"{variant.name}: the models of {variant.soup_of} at seed(s) {seeds} are not kept; run "
            f"`--only {variant.soup_of} --seeds {seeds} --keep-models` first (a finished run is re-trained "
            "only after deleting its record.json)"
        )
    began = time.perf_counter()
    average_models(sources, output)
    return {"of": variant.soup_of, "seeds": variant.soup_seeds, "seconds": time.perf_counter() - began}


def headline(record: dict[str, Any]) -> str:
    """One log line of a run's scores: validation and test accuracy if it has them, else each task's headline."""
    scores = RunRecord.from_json(record).scores
    validated = [s for s in scores.values() if s.extras.get("validation_accuracy") is not None]
    if not validated:
        return ", ".join(f"{name} {s.headline}" for name, s in scores.items())
    return f"val {validated[0].extras['validation_accuracy']:.4f} test {validated[0].headline:.4f}"


def mean_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (None for one value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None
