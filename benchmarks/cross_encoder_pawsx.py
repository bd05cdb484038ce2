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
    protocol  as paraxl's bi-encoder PAWS-X task (``paraxl.evaluation.tasks.pawsx``): one threshold
              fitted (``best_threshold``) on the validation pairs of all languages pooled, applied
              (``accuracy_at``) to each language's test pairs; the headline is the mean over
              languages. Monolingual validation/test keep ``NS`` pairs, as the bi-encoder task and
              the published benchmark do; ``test_accuracy_without_untranslated`` leaves them out.
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
settings is refused, naming the settings that differ.

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
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Final, Literal, NamedTuple

import numpy as np

from paraxl.data.pairs import LabeledPair
from paraxl.data.readers import PAWSX_LANGUAGES, UNTRANSLATED, parse_languages, read_pawsx_pairs
from paraxl.errors import InputError, ParaxlError, check_counts
from paraxl.evaluation.session import resolve_data_dir
from paraxl.evaluation.threshold import accuracy_at, best_threshold
from paraxl.io.atomic import atomic_path
from paraxl.io.hashing import file_sha256, model_folder_fingerprint
from paraxl.loading.specs import DEFAULT_MODEL, resolve_model_folder

PROTOCOL: Final[Literal["resplit"]] = "resplit"
SPLITS = ("train", "validation", "test")
PREDICT_BATCH = 32
WARMUP_RATIO = 0.1
DEFAULT_OUTPUT = Path("benchmarks/results/experiments/cross_encoder_pawsx.json")


RESUME_FILE = "resume.json"


class Resume(NamedTuple):
    """What earlier sittings of a ``--checkpoint-dir`` run left: the checkpoint to continue from
    (None: start afresh), the evaluations and epoch timings up to it, the last raw scores."""

    checkpoint: Path | None
    evaluations: list[dict[str, Any]]
    epoch_seconds: list[float]
    last_raw: dict[str, Any]


class EvalData(NamedTuple):
    """Validation and test pairs per language, and the en->X cross pairs (first, second, label) per X.

    (A NamedTuple, not a dataclass: the tests load this script with importlib, outside ``sys.modules``.)
    """

    validation: dict[str, list[LabeledPair]]
    test: dict[str, list[LabeledPair]]
    cross_validation: dict[str, list[tuple[str, str, int]]]
    cross_test: dict[str, list[tuple[str, str, int]]]
    cross_dropped: dict[str, dict[str, int]]


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
        languages = parse_languages(args.languages)
        check_numbers(args)
        data_dir = resolve_data_dir(args.data_dir)
        train, untranslated = read_train(data_dir, languages, args.limit_train)
        evaluation = read_eval(data_dir, languages)
        files = {f"{lang}/{split}.tsv": pawsx_file(data_dir, lang, split) for lang in languages for split in SPLITS}
        folder = resolve_model_folder(args.model)
        resume = read_resume(args.checkpoint_dir, resume_settings(args, languages))
    except ParaxlError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    report = run(args, command, languages, data_dir, folder, train, untranslated, files, evaluation, resume)
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


# ----------------------------------------------------------------------------- resuming


def resume_settings(args: argparse.Namespace, languages: tuple[str, ...]) -> dict[str, Any]:
    """The options a resumed run must share with the sittings before it (what it trains, and how)."""
    names = ("model", "epochs", "batch_size", "lr", "max_length", "seed", "limit_train")
    return {**{name: getattr(args, name) for name in names}, "languages": list(languages)}


def epochs_in(checkpoint: Path) -> int:
    """Whole epochs a Trainer checkpoint has finished (its ``trainer_state.json``)."""
    path = checkpoint / "trainer_state.json"
    try:
        return round(float(json.loads(path.read_text(encoding="utf-8"))["epoch"]))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InputError(f"unreadable Trainer checkpoint state ({error})", path) from None


def read_resume(directory: Path | None, settings: dict[str, Any]) -> Resume:
    """The state a ``--checkpoint-dir`` run left, checked against this sitting's settings."""
    from transformers.trainer_utils import get_last_checkpoint

    if directory is None:
        return Resume(None, [], [], {})
    path, last = directory / RESUME_FILE, get_last_checkpoint(str(directory)) if directory.is_dir() else None
    if not path.is_file():
        if last is not None:  # training from scratch here would mix with (and rotate away) that checkpoint
            raise InputError(f"holds a Trainer checkpoint but no {RESUME_FILE}: not this script's run", directory)
        return Resume(None, [], [], {})
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        saved_settings, evaluations = saved["settings"], saved["evaluations"]
        epoch_seconds, last_raw = saved["epoch_seconds"], saved["last_raw"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InputError(f"unreadable resume state ({error}); delete the folder to start afresh", path) from None
    if saved_settings != settings:
        differing = sorted(
            k for k in settings.keys() | saved_settings.keys() if settings.get(k) != saved_settings.get(k)
        )
        raise InputError(
            f"--checkpoint-dir holds a run with other settings ({', '.join(differing)}): "
            "rerun with that run's options or use another folder",
            path,
        )
    checkpoint = None if last is None else Path(last)
    done = 0 if checkpoint is None else epochs_in(checkpoint)
    # an epoch evaluated but killed before its checkpoint was saved is trained again
    kept = [result for result in evaluations if result["epoch"] <= done]
    raw = last_raw if kept and len(kept) == len(evaluations) else {}  # the raw scores are of the last evaluation
    return Resume(checkpoint, kept, epoch_seconds[:done], raw)


def write_resume(
    directory: Path, settings: dict[str, Any], resume_state: tuple[list[dict[str, Any]], list[float], dict[str, Any]]
) -> None:
    evaluations, epoch_seconds, last_raw = resume_state
    state = {"settings": settings, "evaluations": evaluations, "epoch_seconds": epoch_seconds, "last_raw": last_raw}
    with atomic_path(directory / RESUME_FILE) as tmp:
        tmp.write_text(json.dumps(state, allow_nan=False) + "\n", encoding="utf-8")


def pawsx_file(data_dir: Path, language: str, split: str) -> Path:
    return data_dir / "pawsx" / PROTOCOL / language / f"{split}.tsv"


def is_untranslated(text: str) -> bool:
    return text.strip() == UNTRANSLATED


def read_split(data_dir: Path, split: str, languages: tuple[str, ...]) -> dict[str, list[LabeledPair]]:
    for language in languages:
        if not pawsx_file(data_dir, language, split).is_file():
            raise InputError("PAWS-X resplit file not found", pawsx_file(data_dir, language, split))
    pairs = read_pawsx_pairs(data_dir, split, languages, protocol=PROTOCOL)
    for language, rows in pairs.items():
        if not rows:
            raise InputError(f"no pairs in PAWS-X {PROTOCOL}/{language}/{split}", pawsx_file(data_dir, language, split))
        for pair in rows:
            if pair.label is None:
                raise InputError("PAWS-X pairs need a label column (0 or 1)", pair.path, pair.line)
    return pairs


def read_train(
    data_dir: Path, languages: tuple[str, ...], limit: int | None
) -> tuple[dict[str, list[LabeledPair]], dict[str, int]]:
    """Usable train pairs per language (``NS`` pairs left out, then the first ``limit``) and ``NS`` counts."""
    pairs = read_split(data_dir, "train", languages)
    usable: dict[str, list[LabeledPair]] = {}
    untranslated: dict[str, int] = {}
    for language, rows in pairs.items():
        kept = [pair for pair in rows if not (is_untranslated(pair.first) or is_untranslated(pair.second))]
        untranslated[language] = len(rows) - len(kept)
        usable[language] = kept[:limit] if limit is not None else kept
    return usable, untranslated


def cross_pairs(english: list[LabeledPair], other: list[LabeledPair]) -> tuple[list[tuple[str, str, int]], int]:
    """(en sentence1, X sentence2, label) matched by ``id``; drops label disagreements and ``NS`` (counted)."""
    by_key = {pair.key: pair for pair in other if pair.key is not None}
    kept: list[tuple[str, str, int]] = []
    dropped = 0
    for pair_a in english:
        pair_b = by_key.get(pair_a.key) if pair_a.key is not None else None
        if pair_b is None:
            continue
        if pair_a.label != pair_b.label or is_untranslated(pair_a.first) or is_untranslated(pair_b.second):
            dropped += 1
            continue
        kept.append((pair_a.first, pair_b.second, int(pair_a.label or 0)))
    return kept, dropped


def read_eval(data_dir: Path, languages: tuple[str, ...]) -> EvalData:
    validation = read_split(data_dir, "validation", languages)
    test = read_split(data_dir, "test", languages)
    cross_validation: dict[str, list[tuple[str, str, int]]] = {}
    cross_test: dict[str, list[tuple[str, str, int]]] = {}
    dropped: dict[str, dict[str, int]] = {"validation": {}, "test": {}}
    if "en" in languages:
        for language in languages:
            if language == "en":
                continue
            cross_validation[language], dropped["validation"][language] = cross_pairs(
                validation["en"], validation[language]
            )
            cross_test[language], dropped["test"][language] = cross_pairs(test["en"], test[language])
        if not any(cross_validation.values()) or not any(cross_test.values()):
            cross_validation, cross_test = {}, {}  # no shared ids: no en->xx score
    return EvalData(validation, test, cross_validation, cross_test, dropped)


# ----------------------------------------------------------------------------- model, training, evaluation


def synchronize() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def predict(model: Any, pairs: list[tuple[str, str]]) -> tuple[np.ndarray, float]:
    """Sigmoid scores (n,) of ``pairs`` and the seconds ``predict`` took."""
    synchronize()
    start = time.perf_counter()
    scores = model.predict(pairs, batch_size=PREDICT_BATCH, show_progress_bar=False, convert_to_numpy=True)
    synchronize()
    return np.asarray(scores, dtype=np.float64).reshape(-1), time.perf_counter() - start


def score_groups(model: Any, groups: dict[str, list[tuple[str, str]]]) -> tuple[dict[str, np.ndarray], float, int]:
    """One ``predict`` over every group's pairs concatenated; scores split back per group."""
    names = list(groups)
    flat = [pair for name in names for pair in groups[name]]
    scores, seconds = predict(model, flat) if flat else (np.zeros(0), 0.0)
    out, start = {}, 0
    for name in names:
        out[name] = scores[start : start + len(groups[name])]
        start += len(groups[name])
    return out, seconds, len(flat)


def labels_of(pairs: list[LabeledPair]) -> np.ndarray:
    return np.array([pair.label for pair in pairs], dtype=np.int64)


def evaluate(model: Any, data: EvalData, languages: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Results of one evaluation and the raw validation/test scores behind them."""
    validation_scores, _, _ = score_groups(
        model, {lang: [(p.first, p.second) for p in data.validation[lang]] for lang in languages}
    )
    test_scores, test_seconds, test_count = score_groups(
        model, {lang: [(p.first, p.second) for p in data.test[lang]] for lang in languages}
    )
    validation_labels = {lang: labels_of(data.validation[lang]) for lang in languages}
    test_labels = {lang: labels_of(data.test[lang]) for lang in languages}
    threshold, validation_accuracy = best_threshold(
        np.concatenate([validation_scores[lang] for lang in languages]),
        np.concatenate([validation_labels[lang] for lang in languages]),
    )
    test_accuracy = {lang: accuracy_at(test_scores[lang], test_labels[lang], threshold) for lang in languages}
    without_ns: dict[str, float | None] = {}
    for lang in languages:
        keep = np.array([not (is_untranslated(p.first) or is_untranslated(p.second)) for p in data.test[lang]])
        without_ns[lang] = (
            accuracy_at(test_scores[lang][keep], test_labels[lang][keep], threshold) if keep.any() else None
        )
    translated = [value for value in without_ns.values() if value is not None]
    result: dict[str, Any] = {
        "threshold": threshold,
        "validation_accuracy": validation_accuracy,
        "validation_accuracy_per_language": {
            lang: accuracy_at(validation_scores[lang], validation_labels[lang], threshold) for lang in languages
        },
        "test_accuracy": test_accuracy,
        "test_accuracy_mean": float(np.mean([test_accuracy[lang] for lang in languages])),
        "test_accuracy_without_untranslated": without_ns,
        "test_accuracy_without_untranslated_mean": float(np.mean(translated)) if translated else None,
        "test_majority_class_mean": float(
            np.mean([max(np.mean(test_labels[lang]), 1 - np.mean(test_labels[lang])) for lang in languages])
        ),
        "inference": {
            "pairs": test_count,
            "seconds": test_seconds,
            "pairs_per_second": test_count / test_seconds if test_seconds > 0 else None,
            "batch_size": PREDICT_BATCH,
        },
    }
    if data.cross_test:
        result["en_to_xx"] = evaluate_cross(model, data)
    raw = {
        "validation": {
            lang: {"scores": validation_scores[lang].tolist(), "labels": validation_labels[lang].tolist()}
            for lang in languages
        },
        "test": {
            lang: {"scores": test_scores[lang].tolist(), "labels": test_labels[lang].tolist()} for lang in languages
        },
    }
    return result, raw


def evaluate_cross(model: Any, data: EvalData) -> dict[str, Any]:
    targets = list(data.cross_test)
    fit, _, _ = score_groups(model, {x: [(a, b) for a, b, _ in data.cross_validation[x]] for x in targets})
    test, _, _ = score_groups(model, {x: [(a, b) for a, b, _ in data.cross_test[x]] for x in targets})
    fit_labels = {x: np.array([y for _, _, y in data.cross_validation[x]], dtype=np.int64) for x in targets}
    test_labels = {x: np.array([y for _, _, y in data.cross_test[x]], dtype=np.int64) for x in targets}
    threshold, _ = best_threshold(
        np.concatenate([fit[x] for x in targets]), np.concatenate([fit_labels[x] for x in targets])
    )
    accuracy = {x: accuracy_at(test[x], test_labels[x], threshold) if test[x].size else None for x in targets}
    scored = [value for value in accuracy.values() if value is not None]
    return {
        "threshold": threshold,
        "accuracy": accuracy,
        "mean": float(np.mean(scored)) if scored else None,
        "n_validation": {x: len(data.cross_validation[x]) for x in targets},
        "n_test": {x: len(data.cross_test[x]) for x in targets},
        "dropped": data.cross_dropped,
    }


def fresh_parameters(model: Any, folder: Path) -> list[str] | None:
    """Parameters of the classification model that the folder's safetensors did not hold (None: unknown)."""
    from safetensors import safe_open

    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return None
    stored: set[str] = set()
    for path in files:
        with safe_open(str(path), "pt") as handle:
            stored |= set(handle.keys())
    hf_model = model.model
    prefix = f"{getattr(hf_model, 'base_model_prefix', '')}."
    names = [name for name, _ in hf_model.named_parameters()]
    return [name for name in names if name not in stored and name.removeprefix(prefix) not in stored]


def position_limit(folder: Path) -> int | None:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = config.get("max_position_embeddings")
    return int(value) if isinstance(value, int) else None


def run(
    args: argparse.Namespace,
    command: str,
    languages: tuple[str, ...],
    data_dir: Path,
    folder: Path,
    train: dict[str, list[LabeledPair]],
    untranslated: dict[str, int],
    files: dict[str, Path],
    data: EvalData,
    resume: Resume,
) -> dict[str, Any]:
    began = time.perf_counter()
    import torch
    from datasets import Dataset
    from sentence_transformers.cross_encoder import (
        CrossEncoder,
        CrossEncoderTrainer,
        CrossEncoderTrainingArguments,
        losses,
    )
    from transformers import TrainerCallback, set_seed

    limit = position_limit(folder)
    max_length = min(args.max_length, limit) if limit else args.max_length
    if max_length != args.max_length:
        print(f"--max-length {args.max_length} > the model's {limit} positions: using {max_length}", flush=True)
    set_seed(args.seed)  # the fresh head's initialisation
    load_start = time.perf_counter()
    model = CrossEncoder(
        str(folder), num_labels=1, max_length=max_length, activation_fn=torch.nn.Sigmoid(), local_files_only=True
    )
    load_seconds = time.perf_counter() - load_start
    if model.default_prompt_name is not None or any(model.prompts.values()):
        raise RuntimeError(f"the cross-encoder would apply prompts {model.prompts}; it must read raw pairs")
    rows = [pair for lang in languages for pair in train[lang]]
    dataset = Dataset.from_dict(
        {
            "sentence1": [pair.first for pair in rows],
            "sentence2": [pair.second for pair in rows],
            "label": [float(pair.label or 0) for pair in rows],
        }
    )
    evaluations: list[dict[str, Any]] = list(resume.evaluations)
    last_raw: dict[str, Any] = resume.last_raw
    epoch_seconds: list[float] = list(resume.epoch_seconds)
    settings = resume_settings(args, languages)
    if resume.checkpoint is not None:
        print(f"resuming from {resume.checkpoint} (epoch {len(epoch_seconds)} of {args.epochs})", flush=True)

    def record(epoch: int, train_seconds: float | None) -> None:
        nonlocal last_raw
        start = time.perf_counter()
        result, last_raw = evaluate(model, data, languages)
        result = {"epoch": epoch, "train_seconds": train_seconds, **result}
        result["eval_seconds"] = time.perf_counter() - start
        evaluations.append(result)
        cross = result.get("en_to_xx", {}).get("mean")
        print(
            f"epoch {epoch}: test accuracy mean {result['test_accuracy_mean']:.4f}, validation "
            f"{result['validation_accuracy']:.4f}, en->xx {cross if cross is None else round(cross, 4)}, "
            f"{result['inference']['pairs_per_second'] or 0:.0f} pairs/s",
            flush=True,
        )
        if args.checkpoint_dir is not None:  # before the epoch's checkpoint: a crash between redoes the epoch
            write_resume(args.checkpoint_dir, settings, (evaluations, epoch_seconds, last_raw))

    class EpochEvaluation(TrainerCallback):
        epoch_start = 0.0
        epochs_this_sitting = 0

        def on_epoch_begin(self, *_: Any, **__: Any) -> None:
            synchronize()
            self.epoch_start = time.perf_counter()

        def on_epoch_end(self, _args: Any, _state: Any, control: Any, **__: Any) -> None:
            synchronize()
            epoch_seconds.append(time.perf_counter() - self.epoch_start)
            record(len(epoch_seconds), epoch_seconds[-1])
            self.epochs_this_sitting += 1
            if args.stop_after_epochs is not None and self.epochs_this_sitting >= args.stop_after_epochs:
                control.should_training_stop = True  # the Trainer still saves this epoch's checkpoint

    if args.eval_before_training and not any(result["epoch"] == 0 for result in evaluations):
        record(0, None)
    with tempfile.TemporaryDirectory(prefix="cross-encoder-pawsx-") as scratch:
        training_args = CrossEncoderTrainingArguments(
            output_dir=scratch if args.checkpoint_dir is None else str(args.checkpoint_dir),
            num_train_epochs=args.epochs,
            per_device_train_batch_size=args.batch_size,
            learning_rate=args.lr,
            warmup_steps=WARMUP_RATIO,  # a float below 1 is a ratio in transformers 5
            lr_scheduler_type="linear",
            seed=args.seed,
            save_strategy="no" if args.checkpoint_dir is None else "epoch",
            save_total_limit=1,  # the latest epoch's checkpoint is all a resume needs (~1.4 GB for e5-small)
            eval_strategy="no",
            logging_strategy="epoch",
            report_to="none",
            dataloader_pin_memory=torch.cuda.is_available(),
            disable_tqdm=not sys.stderr.isatty(),
        )
        trainer = CrossEncoderTrainer(
            model=model,
            args=training_args,
            train_dataset=dataset,
            loss=losses.BinaryCrossEntropyLoss(model),
            callbacks=[EpochEvaluation()],
        )
        output = trainer.train(resume_from_checkpoint=None if resume.checkpoint is None else str(resume.checkpoint))
        losses_by_epoch = {
            round(entry["epoch"]): entry["loss"] for entry in trainer.state.log_history if "loss" in entry
        }
    for result in evaluations:
        result["train_loss"] = losses_by_epoch.get(result["epoch"])
    train_seconds = sum(epoch_seconds)
    trained = [result for result in evaluations if result["epoch"] > 0]
    selected = max(trained, key=lambda result: result["validation_accuracy"]) if trained else None
    final = evaluations[-1]
    epochs_done = len(epoch_seconds)
    return {
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
        "data": {
            "data_dir": str(data_dir),
            "protocol": PROTOCOL,
            "languages": list(languages),
            "files": {name: file_sha256(path) for name, path in sorted(files.items())},
            "train_pairs": {lang: len(train[lang]) for lang in languages},
            "train_pairs_total": len(rows),
            "train_untranslated_left_out": untranslated,
            "limit_train": args.limit_train,
            "validation_pairs": {lang: len(data.validation[lang]) for lang in languages},
            "test_pairs": {lang: len(data.test[lang]) for lang in languages},
            "test_untranslated_kept": {
                lang: sum(is_untranslated(p.first) or is_untranslated(p.second) for p in data.test[lang])
                for lang in languages
            },
        },
        "training": {
            "loss": "BinaryCrossEntropyLoss",
            "epochs": args.epochs,
            "epochs_completed": epochs_done,
            "complete": epochs_done >= args.epochs,
            "checkpoint_dir": None if args.checkpoint_dir is None else str(args.checkpoint_dir),
            "resumed_from": None if resume.checkpoint is None else str(resume.checkpoint),
            "batch_size": args.batch_size,
            "lr": args.lr,
            "warmup_ratio": WARMUP_RATIO,
            "scheduler": "linear",
            "weight_decay": training_args.weight_decay,
            "seed": args.seed,
            "steps": output.global_step,
            "train_loss": output.training_loss,
            "epoch_seconds": epoch_seconds,
            "seconds": train_seconds,
            "examples_per_second": len(rows) * epochs_done / train_seconds if train_seconds > 0 else None,
        },
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
        "scores": {"epoch": final["epoch"], **last_raw} if last_raw else None,
        "timings": {"total_seconds": time.perf_counter() - began},
        "environment": environment(torch),
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
