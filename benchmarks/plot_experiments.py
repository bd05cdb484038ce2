"""Plots of the experiment tables for RESULTS.md, from their JSON and the runs' evaluation files.

    .venv/bin/python benchmarks/plot_experiments.py --best pawsx-long/am-megabatch-1-epoch

Writes into ``benchmarks/results/experiments/plots/``:
- ``margin_sweep.png``: validation and test accuracy against the additive margin (scale 20);
- ``scale_sweep.png``: the same against the scale, at the margin best on validation (0.2);
- ``pawsx_main_by_language.png``: a heatmap of test accuracy per language (and the mean) of each
  main-table variant, and of the longer-schedule, push and distillation tables' variants when
  they exist;
- ``pawsx_bi_vs_cross_by_language.png``: per language, off-the-shelf, the sentence-transformers
  baseline and ``--best`` (means over seeds) against the cross-encoder's last evaluated epoch
  (``cross_encoder_pawsx.json``), with bar 2's line (7 % below the cross-encoder's mean);
- ``pawsx_histograms_before_after.png``: cosine histograms of paraphrase / non-paraphrase test
  pairs, off-the-shelf against ``--best`` (``[TABLE/]VARIANT``, table ``pawsx-main`` by default;
  its seed ``--seed``), each with its fitted threshold;
- ``mpcl_k_curve.png``: Tatoeba-36 accuracy and BUCC F1 against the number of positives K per
  group (paper 2), with single-positive and off-the-shelf as flat references;
and copies the evaluation folder (JSON + plots, including threshold curves) of off-the-shelf
and of ``--best`` next to the tables.
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from paraxl.evaluation.plots import heatmap, language_bars, line_plot, similarity_histogram_grid
from paraxl.experiments.records import TableDocument, VariantRow, run_scores
from paraxl.experiments.runner import run_folder


def load(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text(encoding="utf-8")))


def _validation_and_test(run: dict[str, Any]) -> tuple[float, float]:
    """A run's PAWS-X validation and test accuracy in %."""
    pawsx = run_scores(run)["pawsx"]
    validation, test = pawsx.extras.get("validation_accuracy"), pawsx.headline
    if validation is None or test is None:
        raise ValueError(f"run {run.get('variant')} seed {run.get('seed')}: no PAWS-X validation/test accuracy")
    return float(validation) * 100, test * 100


def margin_sweep(results: Path, out: Path) -> Path | None:
    sweep_path, main_path = results / "pawsx-margin.json", results / "pawsx-main.json"
    if not sweep_path.is_file():
        return None
    points: dict[float, tuple[float, float]] = {}
    runs = load(sweep_path)["runs"] + (load(main_path)["runs"] if main_path.is_file() else [])
    for run in runs:
        loss = run["config"]["loss"]
        if loss["kind"] != "additive_margin" or loss["scale"] != 20.0 or run["config"]["mini_batches_per_step"] != 1:
            continue
        if run["table"] == "pawsx-main" and run["seed"] != 42:
            continue  # the sweep is one seed (42)
        points[loss["margin"]] = _validation_and_test(run)
    margins = sorted(points)
    return line_plot(
        margins,
        {"validation": [points[m][0] for m in margins], "test (7-language mean)": [points[m][1] for m in margins]},
        out / "margin_sweep.png",
        title="Additive-margin softmax: margin sweep (scale 20, 60 steps, seed 42)",
        xlabel="margin m",
        ylabel="PAWS-X resplit accuracy (%)",
    )


def scale_sweep(results: Path, out: Path, margin: float = 0.2) -> Path | None:
    """Validation and test accuracy against the scale, at the margin best on validation (seed 42)."""
    path = results / "pawsx-margin.json"
    if not path.is_file():
        return None
    points: dict[float, tuple[float, float]] = {}
    for run in load(path)["runs"]:
        loss = run["config"]["loss"]
        if loss["kind"] == "additive_margin" and loss["margin"] == margin and run["seed"] == 42:
            points[loss["scale"]] = _validation_and_test(run)
    if len(points) < 2:
        return None
    scales = sorted(points)
    return line_plot(
        scales,
        {"validation": [points[s][0] for s in scales], "test (7-language mean)": [points[s][1] for s in scales]},
        out / "scale_sweep.png",
        title=f"Additive-margin softmax: scale sweep (margin {margin:g}, 60 steps, seed 42)",
        xlabel="scale s (log scale)",
        ylabel="PAWS-X resplit accuracy (%)",
        log_x=True,
    )


PER_LANGUAGE_TABLES = ("pawsx-main", "pawsx-long", "pawsx-push", "pawsx-distill")  # the first must exist


def variants_of(results: Path, table: str) -> Mapping[str, VariantRow]:
    """A table's rows by variant name; none when the table has not been run."""
    path = results / f"{table}.json"
    return TableDocument.from_json(load(path)).variants if path.is_file() else {}


def per_language_percent(row: VariantRow | None) -> dict[str, float] | None:
    """A row's mean test accuracy per language in %, or None when it has none (e.g. not evaluated on PAWS-X)."""
    if not row or not row.per_language:
        return None
    return {lang: stats.mean * 100 for lang, stats in row.per_language.items()}


def grouped_bars(series: dict[str, dict[str, float]], path: Path, title: str, **extra: Any) -> Path:
    """The first series are the base bars, the others grouped beside them per language."""
    first, *rest = series
    return language_bars(
        series[first],
        path,
        title=title,
        ylabel="accuracy (%)",
        label=first,
        series={name: series[name] for name in rest},
        **extra,
    )


def _cells_and_mean(values: dict[str, float], languages: list[str]) -> list[float]:
    """One heatmap row: a cell per language (NaN where missing), then the mean of all of them or NaN."""
    cells = [values.get(language, float("nan")) for language in languages]
    return [*cells, float(np.mean(cells))]  # a NaN cell makes the mean NaN: no mean over fewer languages


def by_language(results: Path, out: Path) -> Path | None:
    """Every PAWS-X variant's test accuracy per language as an annotated heatmap.

    A heatmap, not grouped bars: with ~20 variants, bars repeat the colour cycle and the
    legend cannot tell them apart, while a labelled row per variant stays readable.
    Rows are "table: variant"; the last column is the mean over languages (NaN, drawn
    blank, when a row lacks a language, so a mean over fewer languages is never shown).
    """
    if not (results / f"{PER_LANGUAGE_TABLES[0]}.json").is_file():
        return None
    rows: dict[str, dict[str, float]] = {}
    for table in PER_LANGUAGE_TABLES:
        for name, row in variants_of(results, table).items():
            if (values := per_language_percent(row)) is not None:
                rows[f"{table}: {name}"] = values
    if not rows:  # tables run, none evaluated on PAWS-X yet
        return None
    languages: list[str] = []
    for values in rows.values():
        languages.extend(language for language in values if language not in languages)
    matrix = [_cells_and_mean(values, languages) for values in rows.values()]
    return heatmap(
        matrix,
        list(rows),
        [*languages, "mean"],
        out / "pawsx_main_by_language.png",
        title="PAWS-X resplit test accuracy per language, % (mean over seeds)",
        xlabel="language",
        ylabel="table: variant",
    )


def bi_vs_cross(results: Path, best: str, out: Path) -> Path | None:
    """Paper 1's comparison per language: the baselines and ``best`` against the cross-encoder's last epoch."""
    cross_path = results / "cross_encoder_pawsx.json"
    if not cross_path.is_file():
        return None
    cross = load(cross_path)["evaluations"][-1]
    main = variants_of(results, "pawsx-main")
    table, variant = table_and_variant(best)
    rows = {"off-the-shelf": main.get("off-the-shelf"), "st-mnrl (pawsx-main)": main.get("st-mnrl")}
    rows[f"{variant} ({table}, best)"] = variants_of(results, table).get(variant)
    series = {name: values for name, row in rows.items() if (values := per_language_percent(row)) is not None}
    series[f"cross-encoder (epoch {cross['epoch']})"] = {
        lang: acc * 100 for lang, acc in cross["test_accuracy"].items()
    }
    title = "PAWS-X resplit test accuracy: bi-encoders (mean over seeds) against the same-backbone cross-encoder"
    return grouped_bars(
        series,
        out / "pawsx_bi_vs_cross_by_language.png",
        title,
        baseline=cross["test_accuracy_mean"] * 100 * 0.93,
        baseline_label="bar 2: 7 % below the cross-encoder's mean",
    )


def table_and_variant(spec: str) -> tuple[str, str]:
    """``TABLE/VARIANT`` or ``VARIANT`` (of ``pawsx-main``)."""
    table, _, variant = spec.rpartition("/")
    return table or "pawsx-main", variant


def compared_runs(best: str, seed: int) -> list[tuple[str, str, int]]:
    """(table, variant, seed) of off-the-shelf and of ``best``."""
    return [("pawsx-main", "off-the-shelf", 42), (*table_and_variant(best), seed)]


def run_evaluation(runs_dir: Path, table: str, name: str, seed: int) -> Path:
    """A run's own evaluation folder (``runs/``, not in a fresh clone)."""
    return run_folder(runs_dir, table, name, seed) / "eval"


def kept_evaluation(results: Path, table: str, name: str, seed: int) -> Path:
    """Where ``copy_evaluations`` keeps a run's evaluation in the results."""
    return results / table / f"{name}-seed-{seed}"


def evaluation_folder(runs_dir: Path, results: Path, table: str, name: str, seed: int) -> Path:
    """A run's evaluation: its run folder, else the copy kept in the results (a fresh clone has no runs/)."""
    folder = run_evaluation(runs_dir, table, name, seed)
    return folder if folder.is_dir() else kept_evaluation(results, table, name, seed)


def histograms(runs_dir: Path, results: Path, best: str, seed: int, out: Path) -> Path | None:
    panels = {}
    for table, name, run_seed in compared_runs(best, seed):
        path = evaluation_folder(runs_dir, results, table, name, run_seed) / "pawsx.json"
        if not path.is_file():
            return None
        details = load(path)["details"]
        scores = np.concatenate([details["test_scores"][lang] for lang in details["test_scores"]])
        labels = np.concatenate([details["test_labels"][lang] for lang in details["test_labels"]])
        panels[f"{name} (seed {run_seed})"] = (scores[labels == 1], scores[labels == 0])
    return similarity_histogram_grid(
        panels, out / "pawsx_histograms_before_after.png", title="PAWS-X resplit test pairs, 7 languages pooled"
    )


def _mean(row: VariantRow, column: str) -> float:
    stats = row.columns[column]
    if stats is None:
        raise ValueError(f"column {column!r} has no value")
    return stats.mean


def k_curve(results: Path, out: Path, table: str = "xnli-mpcl-short") -> Path | None:
    path = results / f"{table}.json"
    if not path.is_file():
        return None
    variants = variants_of(results, table)
    ks = sorted(int(name.removeprefix("mpcl-K")) for name in variants if name.removeprefix("mpcl-K").isdigit())
    if len(ks) < 2:
        return None
    metrics = {"Tatoeba-36 acc.": "Tatoeba-36", "BUCC zh-en F1": "BUCC F1"}
    series: dict[str, list[float]] = {}
    for column, label in metrics.items():
        series[f"MPCL {label}"] = [_mean(variants[f"mpcl-K{k}"], column) * 100 for k in ks]
        for reference in ("single-positive", "off-the-shelf"):
            if reference in variants and (stats := variants[reference].columns.get(column)) is not None:
                series[f"{reference} {label}"] = [stats.mean * 100] * len(ks)
    return line_plot(
        ks,
        series,
        out / "mpcl_k_curve.png",
        title=f"Multi-positive contrastive loss: positives per group ({table})",
        xlabel="texts per group K (log scale)",
        ylabel="score (%)",
        log_x=True,
    )


def copy_evaluations(runs_dir: Path, best: str, seed: int, results: Path) -> list[Path]:
    copied = []
    for table, name, run_seed in compared_runs(best, seed):
        source = run_evaluation(runs_dir, table, name, run_seed)
        if source.is_dir():
            target = kept_evaluation(results, table, name, run_seed)
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target)
            copied.append(target)
    return copied


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results-dir", type=Path, default=Path("benchmarks/results/experiments"))
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/experiments"))
    parser.add_argument(
        "--best", default="paraxl-am", help="[TABLE/]VARIANT shown against off-the-shelf (table: pawsx-main)"
    )
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    out = args.results_dir / "plots"
    written = [
        margin_sweep(args.results_dir, out),
        scale_sweep(args.results_dir, out),
        by_language(args.results_dir, out),
        bi_vs_cross(args.results_dir, args.best, out),
        histograms(args.runs_dir, args.results_dir, args.best, args.seed, out),
        k_curve(args.results_dir, out),
    ]
    written += copy_evaluations(args.runs_dir, args.best, args.seed, args.results_dir)
    for path in written:
        if path is not None:
            print(path)


if __name__ == "__main__":
    main()
