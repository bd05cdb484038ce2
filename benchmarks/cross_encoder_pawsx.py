"""Same-backbone cross-encoder reference for PAWS-X: train a sentence-transformers CrossEncoder, evaluate per epoch.

    .venv/bin/python benchmarks/cross_encoder_pawsx.py --data-dir ../shared/data

What it does:
    model     the bi-encoder's backbone (default ``bundled:multilingual-e5-small``, resolved with
              ``resolve_model_folder``) loaded as ``CrossEncoder(folder, num_labels=1)``:
              ``BertForSequenceClassification`` on the same encoder weights, with a freshly
              initialised head. The bundled folder holds no BERT pooler, so the head is the pooler
              (dense + tanh on the first token) and the 1-logit classifier; the JSON lists the
              parameters that were not in the checkpoint (``model.fresh_parameters``).
    no prompt e5's ``query: `` prefix belongs to the bi-encoder's embedding recipe. The cross-encoder
              reads the raw pair ``<s> sentence1 </s></s> sentence2 </s>``; sentence-transformers drops
              the saved prompts when it converts a SentenceTransformer folder into a CrossEncoder,
              and the script checks that none is applied.
    training  ``CrossEncoderTrainer`` + ``BinaryCrossEntropyLoss`` on the PAWS-X resplit train pairs
              of every chosen language pooled and shuffled, ``--epochs`` epochs (default 3; on PAWS
              a cross-encoder often sits at chance for the first), AdamW, linear decay after 10 %
              warm-up. Train pairs with the untranslated placeholder ``NS`` on either side are left
              out and counted.
    scoring   sigmoid of the logit (``CrossEncoder.predict``, batch 32).
    protocol  the bi-encoder's PAWS-X protocol, the same function
              (``paraxl.evaluation.pawsx_protocol.evaluate_pawsx`` on a ``CrossEncoderScorer``): one
              threshold fitted on the validation pairs of all languages pooled, applied to each
              language's test pairs; the headline is the mean over languages. Monolingual
              validation/test keep ``NS`` pairs, as the bi-encoder task and the published benchmark
              do; ``test_accuracy_without_untranslated`` leaves them out.
    en->xx    sentence1 of ``en`` with sentence2 of language X matched by row ``id``, kept where
              both files give the same label and neither sentence used is ``NS``; one threshold
              fitted on the validation en->X pairs of all X pooled, mean over X != en. (The
              bi-encoder task fits its cross-lingual threshold on all 49 language cells pooled;
              a cross-encoder must run every pair, so only the en->X row is scored here.)
    speed     pairs/s of ``CrossEncoder.predict`` over all test pairs in one call (batch 32), and
              training examples/s (training time only, evaluation excluded).

Resuming: ``--checkpoint-dir DIR`` saves a Trainer checkpoint (weights, optimizer, scheduler, data
order) and the evaluations so far after every epoch; the same command again continues from the
last finished epoch, on the same learning-rate schedule, so a 3-epoch run (~3 h on a 2-core CPU)
can be spread over several sittings. ``--stop-after-epochs N`` ends this sitting after N more
epochs and writes the report so far (``complete: false``). A folder holding a run with other
settings is refused, naming the settings that differ. The training is the library's
(``paraxl.training.cross_encoder``): ``paraxl train configs/pawsx-cross-encoder.yaml`` trains the
same model (validation only, no test scores) and continues a ``--checkpoint-dir`` folder of this
script run with the same settings (``output_dir=FOLDER``).

Evaluation runs after every epoch (``--eval-before-training`` adds the untrained model). Writes
``--output`` (JSON: command, model fingerprint, data file hashes, per-epoch results, timings,
library versions, and the validation/test scores of the last evaluation) and a markdown table
beside it (same stem, ``.md``). Bad input (no data folder, unknown language, unknown model)
prints one ``error:`` line and exits 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any, Final, Literal, NamedTuple

import numpy as np

from paraxl.data.pairs import LabeledPair
from paraxl.data.readers import PAWSX_LANGUAGES, UNTRANSLATED, parse_languages, pawsx_file
from paraxl.errors import InputError, ParaxlError, check_counts
from paraxl.evaluation.pawsx_protocol import PawsxResult, evaluate_pawsx, read_labelled
from paraxl.evaluation.session import resolve_data_dir
from paraxl.io.atomic import atomic_path
from paraxl.io.hashing import file_sha256, model_folder_fingerprint
from paraxl.loading.specs import DEFAULT_MODEL, resolve_model_folder
from paraxl.modeling.cross_encoder import PREDICT_BATCH, CrossEncoderScorer, fresh_parameters
from paraxl.training.cross_encoder import (
    WARMUP_RATIO,
    EpochLog,
    EpochSchedule,
    Resume,
    TrainingOutcome,
    load_for_training,
    read_resume,
    run_settings,
    train_cross_encoder,
    usable_train_pairs,
)

PROTOCOL: Final[Literal["resplit"]] = "resplit"
SPLITS = ("train", "validation", "test")
DEFAULT_OUTPUT = Path("benchmarks/results/experiments/cross_encoder_pawsx.json")


class Inputs(NamedTuple):
    """What ``main`` read and checked before anything trains.

    (A NamedTuple, not a dataclass: the tests load this script with importlib, outside ``sys.modules``.)
    """

    languages: tuple[str, ...]
    data_dir: Path
    folder: Path
    train: dict[str, list[LabeledPair]]
    untranslated: dict[str, int]
    files: dict[str, Path]
    validation: dict[str, list[LabeledPair]]
    test: dict[str, list[LabeledPair]]
    resume: Resume


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"model spec (default {DEFAULT_MODEL})")
    parser.add_argument("--data-dir", type=Path, default=None, help="benchmark data (default: $PARAXL_DATA_DIR)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32, help="training batch size")
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--max-length", type=int, default=128, help="tokens per pair (both sentences)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--languages", default=",".join(PAWSX_LANGUAGES), help="comma-separated (default: all 7)")
    parser.add_argument("--limit-train", type=int, default=None, help="first N usable train pairs per language")
    parser.add_argument("--eval-before-training", action="store_true", help="also evaluate the untrained model")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON path; the .md goes beside it")
    parser.add_argument("--checkpoint-dir", type=Path, default=None, help="save every epoch here; rerun to resume")
    parser.add_argument("--stop-after-epochs", type=int, default=None, help="end this sitting after N more epochs")
    args = parser.parse_args(argv)
    command = shlex.join(["python", "benchmarks/cross_encoder_pawsx.py", *(sys.argv[1:] if argv is None else argv)])
    try:
        inputs = read_inputs(args)
    except ParaxlError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    report = run(args, command, inputs)
    json_path, md_path = write_report(report, args.output)
    print(md_path.read_text(encoding="utf-8"))
    print(f"wrote {json_path} and {md_path} in {report['timings']['total_seconds']:.0f} s")
    return 0


def check_numbers(args: argparse.Namespace) -> None:
    check_counts(args, ("epochs", "batch_size", "max_length", "limit_train", "stop_after_epochs"))
    if not (math.isfinite(args.lr) and args.lr > 0):
        raise InputError(f"--lr must be a positive number, got {args.lr}")
    if args.stop_after_epochs is not None and args.checkpoint_dir is None:
        raise InputError("--stop-after-epochs needs --checkpoint-dir: the epochs run so far would be lost")


def read_inputs(args: argparse.Namespace) -> Inputs:
    """Languages, data, model folder and resume state, each checked (a ``ParaxlError`` on bad input)."""
    languages = parse_languages(args.languages)
    check_numbers(args)
    data_dir = resolve_data_dir(args.data_dir)
    train, untranslated = usable_train_pairs(read_split(data_dir, "train", languages), args.limit_train)
    validation, test = read_split(data_dir, "validation", languages), read_split(data_dir, "test", languages)
    files = {
        f"{lang}/{split}.tsv": pawsx_file(data_dir, PROTOCOL, lang, split) for lang in languages for split in SPLITS
    }
    folder = resolve_model_folder(args.model)
    resume = read_resume(args.checkpoint_dir, resume_settings(args, languages))
    return Inputs(languages, data_dir, folder, train, untranslated, files, validation, test, resume)


def resume_settings(args: argparse.Namespace, languages: tuple[str, ...]) -> dict[str, Any]:
    """The options a resumed run must share with the sittings before it (what it trains, and how):
    those of ``paraxl train configs/pawsx-cross-encoder.yaml`` for the same values."""
    rows = {"limit_train": args.limit_train, "languages": list(languages)}
    return run_settings(args.model, args.epochs, args.batch_size, args.lr, args.max_length, args.seed, rows)


def is_untranslated(text: str) -> bool:
    return text.strip() == UNTRANSLATED


def read_split(data_dir: Path, split: str, languages: tuple[str, ...]) -> dict[str, list[LabeledPair]]:
    for language in languages:
        if not pawsx_file(data_dir, PROTOCOL, language, split).is_file():
            raise InputError("PAWS-X resplit file not found", pawsx_file(data_dir, PROTOCOL, language, split))
    return read_labelled(data_dir, split, languages, PROTOCOL)


# ----------------------------------------------------------------------------- evaluation


def evaluate(model: Any, inputs: Inputs) -> tuple[dict[str, Any], dict[str, Any]]:
    """One evaluation (the PAWS-X protocol on the cross-encoder's scores) and the raw scores behind it."""
    result = evaluate_pawsx(
        CrossEncoderScorer(model, PREDICT_BATCH),
        inputs.validation,
        inputs.test,
        cross_lingual="en_row",
        grouping="by_split",  # validation pairs in one predict call, test pairs (timed) in another
    )
    return evaluation_record(result), {
        split: {lang: {"scores": s.scores.tolist(), "labels": s.labels.tolist()} for lang, s in sets.items()}
        for split, sets in (("validation", result.fit), ("test", result.test))
    }


def evaluation_record(result: PawsxResult) -> dict[str, Any]:
    """One entry of the report's ``evaluations`` (its layout is the result file's)."""
    languages = result.languages
    test_accuracy = {lang: result.monolingual[lang].at_pooled.accuracy for lang in languages}
    without_ns = {lang: result.monolingual[lang].accuracy_without_untranslated for lang in languages}
    translated = [value for value in without_ns.values() if value is not None]
    test_pairs, test_seconds = sum(s.labels.size for s in result.test.values()), result.seconds["test"]
    record: dict[str, Any] = {
        "threshold": result.pooled_threshold,
        "validation_accuracy": result.pooled_fit_accuracy,
        "validation_accuracy_per_language": result.fit_accuracy,
        "test_accuracy": test_accuracy,
        "test_accuracy_mean": float(np.mean([test_accuracy[lang] for lang in languages])),
        "test_accuracy_without_untranslated": without_ns,
        "test_accuracy_without_untranslated_mean": float(np.mean(translated)) if translated else None,
        "test_majority_class_mean": float(np.mean([result.monolingual[lang].majority_class for lang in languages])),
        "inference": {
            "pairs": test_pairs,
            "seconds": test_seconds,
            "pairs_per_second": test_pairs / test_seconds if test_seconds > 0 else None,
            "batch_size": PREDICT_BATCH,
        },
    }
    row = result.en_row
    if row is not None and any(row.n_test.values()):
        record["en_to_xx"] = {
            "threshold": row.threshold,
            "accuracy": row.accuracy,
            "mean": row.mean if not math.isnan(row.mean) else None,
            "n_validation": row.n_fit,
            "n_test": row.n_test,
            "dropped": {"validation": row.dropped_fit, "test": row.dropped_test},
        }
    return record


# ----------------------------------------------------------------------------- training run


def run(args: argparse.Namespace, command: str, inputs: Inputs) -> dict[str, Any]:
    began = time.perf_counter()
    import torch

    folder, resume = inputs.folder, inputs.resume
    model, max_length, load_seconds = load_for_training(folder, args.max_length, args.seed, say)
    rows = [pair for lang in inputs.languages for pair in inputs.train[lang]]
    if resume.checkpoint is not None:
        print(f"resuming from {resume.checkpoint} (epoch {len(resume.epoch_seconds)} of {args.epochs})", flush=True)
    settings = resume_settings(args, inputs.languages)
    log = EpochLog(resume, settings, args.checkpoint_dir, lambda: evaluate(model, inputs), print_epoch)
    if args.eval_before_training and not any(result["epoch"] == 0 for result in log.state.evaluations):
        log.record(0, None)
    schedule = EpochSchedule(
        args.epochs, args.batch_size, args.lr, args.seed, args.checkpoint_dir, args.stop_after_epochs
    )
    outcome = train_cross_encoder(model, rows, schedule, resume.checkpoint, log.after_epoch, partial(print, flush=True))
    log.add_losses(outcome)
    state = log.state
    report: dict[str, Any] = {
        "benchmark": "cross_encoder_pawsx",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "model": {
            "spec": args.model,
            "folder": str(folder),
            "fingerprint": model_folder_fingerprint(folder),
            "architecture": type(model.model).__name__,
            "parameters": sum(parameter.numel() for parameter in model.parameters()),
            "fresh_parameters": fresh_parameters(model, folder),
            "prompts": model.prompts,  # empty: raw pairs, no e5 prefix
            "max_length": max_length,
            "load_seconds": load_seconds,
        },
        "data": data_section(args, inputs, len(rows)),
        "training": training_section(args, state, outcome, len(rows)),
        **results_sections(state),
        "timings": {"total_seconds": time.perf_counter() - began},
        "environment": environment(torch),
    }
    return report


def say(message: str) -> None:
    print(message, flush=True)


def print_epoch(result: dict[str, Any]) -> None:
    cross = result.get("en_to_xx", {}).get("mean")
    print(
        f"epoch {result['epoch']}: test accuracy mean {result['test_accuracy_mean']:.4f}, validation "
        f"{result['validation_accuracy']:.4f}, en->xx {cross if cross is None else round(cross, 4)}, "
        f"{result['inference']['pairs_per_second'] or 0:.0f} pairs/s",
        flush=True,
    )


def data_section(args: argparse.Namespace, inputs: Inputs, train_total: int) -> dict[str, Any]:
    languages = inputs.languages
    return {
        "data_dir": str(inputs.data_dir),
        "protocol": PROTOCOL,
        "languages": list(languages),
        "files": {name: file_sha256(path) for name, path in sorted(inputs.files.items())},
        "train_pairs": {lang: len(inputs.train[lang]) for lang in languages},
        "train_pairs_total": train_total,
        "train_untranslated_left_out": inputs.untranslated,
        "limit_train": args.limit_train,
        "validation_pairs": {lang: len(inputs.validation[lang]) for lang in languages},
        "test_pairs": {lang: len(inputs.test[lang]) for lang in languages},
        "test_untranslated_kept": {
            lang: sum(is_untranslated(p.first) or is_untranslated(p.second) for p in inputs.test[lang])
            for lang in languages
        },
    }


def training_section(
    args: argparse.Namespace, state: Resume, outcome: TrainingOutcome, train_total: int
) -> dict[str, Any]:
    epochs_done, train_seconds = len(state.epoch_seconds), sum(state.epoch_seconds)
    return {
        "loss": "BinaryCrossEntropyLoss",
        "epochs": args.epochs,
        "epochs_completed": epochs_done,
        "complete": epochs_done >= args.epochs,
        "checkpoint_dir": None if args.checkpoint_dir is None else str(args.checkpoint_dir),
        "resumed_from": None if state.checkpoint is None else str(state.checkpoint),
        "batch_size": args.batch_size,
        "lr": args.lr,
        "warmup_ratio": WARMUP_RATIO,
        "scheduler": "linear",
        "weight_decay": outcome.weight_decay,
        "seed": args.seed,
        "steps": outcome.steps,
        "train_loss": outcome.train_loss,
        "epoch_seconds": state.epoch_seconds,
        "seconds": train_seconds,
        "examples_per_second": train_total * epochs_done / train_seconds if train_seconds > 0 else None,
    }


def results_sections(state: Resume) -> dict[str, Any]:
    """``evaluations``, ``final``, ``selected_by_validation`` and ``scores`` (the last raw scores)."""
    evaluations = state.evaluations
    trained = [result for result in evaluations if result["epoch"] > 0]
    selected = max(trained, key=lambda result: result["validation_accuracy"]) if trained else None
    final = evaluations[-1]
    return {
        "evaluations": evaluations,
        "final": {
            "epoch": final["epoch"],
            "test_accuracy_mean": final["test_accuracy_mean"],
            "validation_accuracy": final["validation_accuracy"],
            "en_to_xx_mean": final.get("en_to_xx", {}).get("mean"),
            "pairs_per_second": final["inference"]["pairs_per_second"],
        },
        "selected_by_validation": None
        if selected is None
        else {
            "epoch": selected["epoch"],
            "validation_accuracy": selected["validation_accuracy"],
            "test_accuracy_mean": selected["test_accuracy_mean"],
            "en_to_xx_mean": selected.get("en_to_xx", {}).get("mean"),
        },
        "scores": {"epoch": final["epoch"], **state.last_raw} if state.last_raw else None,
    }


def environment(torch: Any) -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for package in ("paraxl", "torch", "transformers", "sentence-transformers", "datasets", "accelerate", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    cuda = torch.cuda.is_available()
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "device": torch.cuda.get_device_name(0) if cuda else f"cpu ({os.cpu_count()} cores)",
        "torch_threads": torch.get_num_threads(),
    }


# ----------------------------------------------------------------------------- report


def percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def markdown(report: dict[str, Any]) -> str:
    languages = report["data"]["languages"]
    has_cross = any("en_to_xx" in result for result in report["evaluations"])
    header = ["epoch", "train loss", "val acc", "threshold", *languages, "mean"] + (["en→xx"] if has_cross else [])
    lines = [
        f"### Cross-encoder on PAWS-X resplit ({report['model']['spec']}, same backbone as the bi-encoder)",
        "",
        "Test accuracy (%) at one threshold fitted on the validation pairs of all languages pooled.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for result in report["evaluations"]:
        loss = result.get("train_loss")
        cells = [
            str(result["epoch"]),
            "–" if loss is None else f"{loss:.4f}",
            percent(result["validation_accuracy"]),
            f"{result['threshold']:.3f}",
            *(percent(result["test_accuracy"][lang]) for lang in languages),
            percent(result["test_accuracy_mean"]),
        ]
        if has_cross:
            cells.append(percent(result.get("en_to_xx", {}).get("mean")))
        lines.append("| " + " | ".join(cells) + " |")
    training, final, data = report["training"], report["final"], report["data"]
    examples = training["examples_per_second"]
    lines += [
        "",
        f"Training: {data['train_pairs_total']} pairs ({sum(data['train_untranslated_left_out'].values())} "
        f"with `NS` left out), {epochs_of(training)}, batch {training['batch_size']}, lr {training['lr']:g}, "
        f"max length {report['model']['max_length']}, seed {training['seed']}: {training['seconds']:.0f} s, "
        f"{examples or 0:.1f} examples/s.",
        f"Inference: {final['pairs_per_second'] or 0:.1f} pairs/s (`CrossEncoder.predict`, batch {PREDICT_BATCH}, "
        f"{report['evaluations'][-1]['inference']['pairs']} test pairs) on {report['environment']['device']}.",
    ]
    if report["selected_by_validation"]:
        chosen = report["selected_by_validation"]
        lines.append(
            f"Epoch chosen by validation accuracy: {chosen['epoch']} "
            f"(test mean {percent(chosen['test_accuracy_mean'])})."
        )
    return "\n".join(lines) + "\n"


def epochs_of(training: dict[str, Any]) -> str:
    if training.get("complete", True):
        return f"{training['epochs']} epochs"
    return f"{training['epochs_completed']} of {training['epochs']} epochs so far (rerun to resume)"


def write_report(report: dict[str, Any], output: Path) -> tuple[Path, Path]:
    md_path = output.with_suffix(".md")
    with atomic_path(output) as tmp:
        tmp.write_text(json.dumps(report, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    with atomic_path(md_path) as tmp:
        tmp.write_text(markdown(report), encoding="utf-8")
    return output, md_path


if __name__ == "__main__":
    raise SystemExit(main())
