"""``paraxl train`` for a cross-encoder config: train, checkpoint every epoch, write ``final/`` and a run record.

Output folder layout::

    config.json          the validated config of the last sitting
    resume.json          the resume settings and the per-epoch records so far (training.cross_encoder)
    checkpoint-<step>/   the Trainer checkpoint of the last finished epoch (weights, optimizer,
                         scheduler, RNG, data order)
    final/               the trained model: ``sentence_transformers.CrossEncoder(path)`` loads it
    summary.json         what the run did, how long it took (written last: a finished run)

Resuming is automatic: the same command after a kill continues after the last finished epoch, on
the same learning-rate schedule and data order, and ends with the weights of an uninterrupted run.
For PAWS-X resplit train pairs the resume settings are those ``benchmarks/cross_encoder_pawsx.py``
writes, so a ``--checkpoint-dir`` folder of that script (same model, schedule, seed and languages)
is continued by ``paraxl train CONFIG output_dir=FOLDER``; its per-epoch records are kept.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from paraxl.errors import InputError
from paraxl.io.atomic import atomic_directory
from paraxl.io.hashing import data_file_records, model_folder_fingerprint
from paraxl.io.outputs import check_output as check_writable
from paraxl.loading.specs import resolve_model_folder
from paraxl.modeling.cross_encoder import CrossEncoderScorer
from paraxl.modeling.finite import check_finite_tensors
from paraxl.paths import data_dir as resolve_data_dir
from paraxl.training.cross_encoder import (
    RESUME_FILE,
    WARMUP_RATIO,
    EpochLog,
    EpochSchedule,
    LoadedModel,
    Resume,
    TrainingOutcome,
    checkpoint_step,
    load_for_training,
    read_resume,
    train_cross_encoder,
)
from paraxl.training.cross_encoder_config import CrossEncoderTrainConfig, resume_settings
from paraxl.training.cross_encoder_data import TrainPairs, read_train_pairs, read_validation, validate, validation_files
from paraxl.training.distributed import pick_device
from paraxl.training.precision import resolve_precision
from paraxl.training.retrieval_negatives import with_retrieval_negatives
from paraxl.training.run_files import write_json

SUMMARY_FILE = "summary.json"


@dataclass(frozen=True)
class CrossEncoderSummary:
    """What ``paraxl train`` prints: the folder, steps, pairs, speed and the validation accuracies by epoch."""

    output_dir: str
    steps: int
    pairs: int  # train pairs per epoch
    epochs: int
    examples_per_second: float | None
    validation: dict[int, float]  # validation accuracy per epoch (empty without validation)
    record: dict[str, Any]  # summary.json


def train_cross_encoder_config(
    config: CrossEncoderTrainConfig,
    *,
    data_dir: str | Path | None = None,
    overwrite: bool = False,
    console: Console | None = None,
) -> CrossEncoderSummary:
    """Run (or resume) the training that ``config`` describes; see the module docstring."""
    began = time.perf_counter()
    console = console or Console(stderr=True)

    def say(message: str) -> None:
        console.print(message, markup=False, soft_wrap=True, highlight=False)

    output = Path(config.output_dir)
    check_output_folder(output, overwrite)
    folder = data_folder(config, data_dir)
    pairs = read_train_pairs(config.data, folder, seed=config.seed)
    validation = read_validation(config.validation, folder) if config.validation is not None else None
    model_folder = resolve_model_folder(config.model.name)
    miner_folder = _miner_folder(config)
    miner_fingerprint = None if miner_folder is None else model_folder_fingerprint(miner_folder)
    if overwrite:  # only now: a config that fails on its data or model leaves the earlier run as it was
        remove_run(output)
    precision = resolve_precision(config.precision, pick_device("auto"))  # the device the Trainer picks
    settings = resume_settings(config, precision, miner_fingerprint)
    resume = read_resume(output, settings)  # before mining: a refused resume costs no miner time
    if config.retrieval_negatives is not None and miner_folder is not None:
        pairs = with_retrieval_negatives(pairs, config.retrieval_negatives, miner_folder, say)
    write_json(output / "config.json", config.model_dump(mode="json"))
    loaded = load_for_training(model_folder, config.model.max_seq_length, config.seed, say)
    say(
        f"training a cross-encoder on {len(pairs.rows)} labelled pairs ({config.epochs} epochs, "
        f"precision {precision}, {model_folder})"
    )
    if resume.checkpoint is not None:
        say(f"resuming from {resume.checkpoint} (epoch {len(resume.epoch_seconds)} of {config.epochs})")

    def evaluate() -> tuple[dict[str, Any], dict[str, Any]]:
        assert validation is not None and config.validation is not None
        return validate(CrossEncoderScorer(loaded.model, config.validation.batch_size), validation), {}

    log = EpochLog(resume, settings, output, evaluate if validation is not None else None, _shower(say))
    schedule = EpochSchedule(
        config.epochs,
        config.batch_size,
        config.lr,
        config.seed,
        output,
        length_grouped=config.length_grouped,
        bf16=precision == "bf16",
    )
    outcome = train_cross_encoder(loaded.model, pairs.rows, schedule, resume.checkpoint, log.after_epoch, say)
    log.add_losses(outcome)
    check_finite_tensors(loaded.model.state_dict(), "the trained cross-encoder")
    with atomic_directory(output / "final") as tmp:
        loaded.model.save(str(tmp))
    files = [*pairs.files, *(validation_files(config.validation, folder) if config.validation and folder else [])]
    record = run_record(config, (model_folder, loaded), pairs, (log.state, outcome), files, folder, settings)
    record["timings"] = {"load_seconds": loaded.seconds, "sitting_seconds": time.perf_counter() - began}
    write_json(output / SUMMARY_FILE, record)
    training = record["training"]
    accuracies = {
        item["epoch"]: item["validation_accuracy"] for item in record["epochs"] if "validation_accuracy" in item
    }
    return CrossEncoderSummary(
        str(output), outcome.steps, len(pairs.rows), config.epochs, training["examples_per_second"], accuracies, record
    )


def _miner_folder(config: CrossEncoderTrainConfig) -> Path | None:
    """The folder of ``retrieval_negatives.miner`` (None without one), resolved once for both its
    fingerprint and the mining."""
    negatives = config.retrieval_negatives
    return None if negatives is None else Path(resolve_model_folder(negatives.miner))


def check_output_folder(output: Path, overwrite: bool) -> None:
    """Refuse a finished run's folder (unless ``overwrite``: see :func:`remove_run`) and a bi-encoder's."""
    check_writable(output, "folder")  # before anything is loaded or read
    if (output / "checkpoints").is_dir():
        raise InputError("holds a bi-encoder run (checkpoints/); choose another output_dir", output)
    if (output / SUMMARY_FILE).exists() and not overwrite:
        raise InputError("holds a finished run; choose another output_dir or pass --overwrite", output)


def remove_run(output: Path) -> None:
    """Start over (``--overwrite``): this trainer's files in ``output`` go, nothing else."""
    if output.is_dir():
        for path in output.iterdir():
            if path.is_dir() and (checkpoint_step(path) is not None or path.name == "final"):
                shutil.rmtree(path)
            elif path.name in (RESUME_FILE, SUMMARY_FILE, "config.json"):
                path.unlink()


def data_folder(config: CrossEncoderTrainConfig, data_dir: str | Path | None) -> Path | None:
    """The benchmark data folder, where the config reads from it (None where it does not)."""
    if not config.reads_data_dir:
        return None
    folder = resolve_data_dir(data_dir if data_dir is not None else config.data_dir)
    if folder is None:
        raise InputError("the config reads the benchmark data folder: pass --data-dir or set $PARAXL_DATA_DIR")
    if not folder.is_dir():
        raise InputError("benchmark data folder not found", folder)
    return folder


def _shower(say: Callable[[str], None]) -> Callable[[dict[str, Any]], None]:
    """One line per epoch record: its training time and, if validated, its accuracy and threshold."""

    def show(result: dict[str, Any]) -> None:
        line = f"epoch {result['epoch']}: trained in {result['train_seconds'] or 0:.1f} s"
        if "validation_accuracy" in result:
            line += f", validation accuracy {result['validation_accuracy']:.4f} (threshold {result['threshold']:.3f})"
        say(line)

    return show


def run_record(
    config: CrossEncoderTrainConfig,
    model: tuple[Path, LoadedModel],
    pairs: TrainPairs,
    trained: tuple[Resume, TrainingOutcome],
    files: list[Path],
    data_dir: Path | None,
    settings: dict[str, Any],
) -> dict[str, Any]:
    """``summary.json``: the config, the model, the data (file hashes), the training and each epoch's record
    (``settings``: ``resume.json``'s settings, the precision resolved on this machine among them)."""
    folder, loaded = model
    state, outcome = trained
    done, seconds = len(state.epoch_seconds), sum(state.epoch_seconds)
    validated = [item for item in state.evaluations if "validation_accuracy" in item and item["epoch"] > 0]
    best = max(validated, key=lambda item: item["validation_accuracy"]) if validated else None
    return {
        "kind": "cross_encoder",
        "config": config.model_dump(mode="json"),
        "settings": settings,
        "model": {
            "spec": config.model.name,
            "folder": str(folder),
            "fingerprint": model_folder_fingerprint(folder),
            "architecture": type(loaded.model.model).__name__,
            "max_length": loaded.max_length,
        },
        "data": {
            "pairs": pairs.pairs,
            "pairs_total": len(pairs.rows),
            "untranslated_left_out": pairs.untranslated,
            "cross_lingual_pairs": pairs.cross_lingual,  # per "A-B", included in pairs_total
            "retrieval_negatives": pairs.retrieval_negatives,  # label-0 pairs per search (language, "A-B"), in it too
            "skipped_rows": pairs.skipped_rows,
            "files": data_file_records(files, data_dir),
        },
        "training": {
            "loss": "BinaryCrossEntropyLoss",
            "epochs": config.epochs,
            "epochs_completed": done,
            "resumed_from": None if state.checkpoint is None else str(state.checkpoint),
            "warmup_ratio": WARMUP_RATIO,
            "precision": settings.get("precision", "fp32"),  # as resolved on this machine
            "scheduler": "linear",
            "weight_decay": outcome.weight_decay,
            "steps": outcome.steps,  # the losses: each epoch's record (the Trainer's mean over that epoch)
            "epoch_seconds": state.epoch_seconds,
            "seconds": seconds,
            "examples_per_second": len(pairs.rows) * done / seconds if seconds > 0 else None,
        },
        "epochs": state.evaluations,
        "best_by_validation": None if best is None else {key: best[key] for key in ("epoch", "validation_accuracy")},
    }
