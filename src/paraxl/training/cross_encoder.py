"""Resumable per-epoch training of a sentence-transformers cross-encoder on labelled pairs.

``CrossEncoderTrainer`` + ``BinaryCrossEntropyLoss`` over (sentence1, sentence2, 0/1 label) rows,
AdamW with linear decay after a warm-up ratio, a callback after every epoch (where a caller
evaluates). With a checkpoint folder, a Trainer checkpoint (weights, optimizer, scheduler, data
order) is saved after every epoch and ``resume.json`` beside it keeps the caller's state (its
settings, the evaluations so far, epoch times, the last raw scores): running the same settings
again continues after the last finished epoch on the same learning-rate schedule; other settings
in the same folder are refused, naming the settings that differ.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from paraxl.data.pairs import LabeledPair
from paraxl.data.readers import is_untranslated
from paraxl.errors import InputError
from paraxl.io.atomic import write_json_atomic
from paraxl.modeling.cross_encoder import check_raw_pairs, load_cross_encoder, position_limit, synchronize
from paraxl.training.step_log import step_log

if TYPE_CHECKING:
    from sentence_transformers.cross_encoder import CrossEncoder

RESUME_FILE = "resume.json"
WARMUP_RATIO = 0.1


@dataclass(frozen=True)
class Resume:
    """What earlier sittings of a checkpoint-folder run left: the checkpoint to continue from
    (None: start afresh), the evaluations and epoch timings up to it, the last raw scores."""

    checkpoint: Path | None
    evaluations: list[dict[str, Any]]
    epoch_seconds: list[float]
    last_raw: dict[str, Any]


def epochs_in(checkpoint: Path) -> int:
    """Whole epochs a Trainer checkpoint has finished (its ``trainer_state.json``)."""
    path = checkpoint / "trainer_state.json"
    try:
        return round(float(json.loads(path.read_text(encoding="utf-8"))["epoch"]))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InputError(f"unreadable Trainer checkpoint state ({error})", path) from None


def read_resume(directory: Path | None, settings: dict[str, Any]) -> Resume:
    """The state a checkpoint-folder run left, checked against this sitting's ``settings``."""
    if directory is None:
        return Resume(None, [], [], {})
    path, checkpoints = directory / RESUME_FILE, trainer_checkpoints(directory)
    if not path.is_file():
        if checkpoints:  # training from scratch here would mix with (and rotate away) that checkpoint
            raise InputError(f"holds a Trainer checkpoint but no {RESUME_FILE}: not this trainer's run", directory)
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
            f"the folder holds a run with other settings ({', '.join(differing)}): "
            "rerun with that run's settings or use another folder",
            path,
        )
    # a checkpoint killed while being saved has no trainer_state.json (the Trainer writes it last)
    complete = [checkpoint for checkpoint in checkpoints if (checkpoint / "trainer_state.json").is_file()]
    checkpoint = complete[-1] if complete else None
    done = 0 if checkpoint is None else epochs_in(checkpoint)
    # an epoch evaluated but killed before its checkpoint was saved is trained again
    kept = [result for result in evaluations if result["epoch"] <= done]
    raw = last_raw if kept and len(kept) == len(evaluations) else {}  # the raw scores are of the last evaluation
    return Resume(checkpoint, kept, epoch_seconds[:done], raw)


def trainer_checkpoints(directory: Path) -> list[Path]:
    """The Trainer's ``checkpoint-<step>`` folders in ``directory``, oldest step first."""
    if not directory.is_dir():
        return []
    found = [path for path in directory.glob("checkpoint-*") if path.is_dir() and checkpoint_step(path) is not None]
    return sorted(found, key=lambda path: checkpoint_step(path) or 0)


def checkpoint_step(path: Path) -> int | None:
    """N for a Trainer checkpoint folder named ``checkpoint-N``; None for any other name."""
    prefix, _, step = path.name.partition("-")
    return int(step) if prefix == "checkpoint" and step.isdigit() else None


def write_resume(directory: Path, settings: dict[str, Any], state: Resume) -> None:
    """``resume.json``: the settings and the state so far (the checkpoint path is the Trainer's)."""
    saved = {
        "settings": settings,
        "evaluations": state.evaluations,
        "epoch_seconds": state.epoch_seconds,
        "last_raw": state.last_raw,
    }
    write_json_atomic(directory / RESUME_FILE, saved, allow_nan=False)


def run_settings(
    model: str, epochs: int, batch_size: int, lr: float, max_length: int, seed: int, rows: dict[str, Any]
) -> dict[str, Any]:
    """``resume.json``'s ``settings``: the model spec, the schedule and ``rows`` (what the train pairs are:
    the PAWS-X script's ``limit_train`` and ``languages``, or a config's data section)."""
    schedule = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "max_length": max_length, "seed": seed}
    return {"model": model, **schedule, **rows}


def usable_train_pairs(
    pairs: dict[str, list[LabeledPair]], limit: int | None
) -> tuple[dict[str, list[LabeledPair]], dict[str, int]]:
    """Per language: the pairs without ``NS`` on either side (then the first ``limit``), and the ``NS`` count."""
    usable: dict[str, list[LabeledPair]] = {}
    untranslated: dict[str, int] = {}
    for language, rows in pairs.items():
        kept = [pair for pair in rows if not is_untranslated(pair.first, pair.second)]
        untranslated[language] = len(rows) - len(kept)
        usable[language] = kept[:limit] if limit is not None else kept
    return usable, untranslated


@dataclass(frozen=True)
class EpochSchedule:
    """How to train: epochs in all, batch size, learning rate, seed; where to checkpoint and when to stop."""

    epochs: int
    batch_size: int
    lr: float
    seed: int
    checkpoint_dir: Path | None = None
    stop_after_epochs: int | None = None  # end this sitting after N more epochs (needs checkpoint_dir)
    warmup_ratio: float = WARMUP_RATIO
    length_grouped: bool = False  # batches of similar token lengths (see :class:`LengthGroupedBatches`)
    bf16: bool = False  # bf16 autocast in the forward passes (the trainer's ``bf16``); weights stay fp32


@dataclass(frozen=True)
class TrainingOutcome:
    """What the Trainer reports: optimizer steps, mean loss, the loss logged per epoch, weight decay."""

    steps: int
    train_loss: float
    losses_by_epoch: dict[int, float]
    weight_decay: float


def train_cross_encoder(
    model: CrossEncoder,
    rows: Sequence[LabeledPair],
    schedule: EpochSchedule,
    resume_from: Path | None,
    after_epoch: Callable[[float], None],
    say: Callable[[str], None] | None = None,
) -> TrainingOutcome:
    """Train ``model`` on ``rows`` (label 1 = paraphrase) and call ``after_epoch(seconds)`` after each epoch.

    ``resume_from``: a Trainer checkpoint of the same schedule to continue from. The callback runs
    before the epoch's checkpoint is saved, so a crash between them redoes the epoch. ``say``:
    where a progress line goes once a minute when stderr is not a terminal (the tqdm bar is off).
    """
    import torch
    from datasets import Dataset
    from sentence_transformers.cross_encoder import CrossEncoderTrainer, CrossEncoderTrainingArguments, losses

    dataset = Dataset.from_dict(
        {
            "sentence1": [pair.first for pair in rows],
            "sentence2": [pair.second for pair in rows],
            "label": [float(pair.label or 0) for pair in rows],
        }
    )
    show_bar = sys.stderr.isatty()
    callbacks = [_epoch_callback(after_epoch, schedule.stop_after_epochs)]
    if say is not None and not show_bar:
        callbacks.append(step_log(say))
    with tempfile.TemporaryDirectory(prefix="cross-encoder-") as scratch:
        training_args = CrossEncoderTrainingArguments(
            output_dir=scratch if schedule.checkpoint_dir is None else str(schedule.checkpoint_dir),
            num_train_epochs=schedule.epochs,
            per_device_train_batch_size=schedule.batch_size,
            learning_rate=schedule.lr,
            warmup_steps=schedule.warmup_ratio,  # a float below 1 is a ratio in transformers 5
            lr_scheduler_type="linear",
            seed=schedule.seed,
            save_strategy="no" if schedule.checkpoint_dir is None else "epoch",
            save_total_limit=1,  # the latest epoch's checkpoint is all a resume needs (~1.4 GB for e5-small)
            eval_strategy="no",
            logging_strategy="epoch",
            report_to="none",
            dataloader_pin_memory=torch.cuda.is_available(),
            disable_tqdm=not show_bar,
            batch_sampler=_batches(schedule, model, rows),
            bf16=schedule.bf16,
            use_cpu=schedule.bf16 and not torch.cuda.is_available(),  # transformers asks for it: bf16 on a CPU
        )
        trainer = CrossEncoderTrainer(
            model=model,
            args=training_args,
            train_dataset=dataset,
            loss=losses.BinaryCrossEntropyLoss(model),
            callbacks=callbacks,
        )
        output = trainer.train(resume_from_checkpoint=None if resume_from is None else str(resume_from))
        losses_by_epoch = {
            round(entry["epoch"]): entry["loss"] for entry in trainer.state.log_history if "loss" in entry
        }
    return TrainingOutcome(output.global_step, output.training_loss, losses_by_epoch, training_args.weight_decay)


def _batches(schedule: EpochSchedule, model: CrossEncoder, rows: Sequence[LabeledPair]) -> Any:
    """The trainer's ``batch_sampler``: random batches (its default), or length-grouped ones."""
    from sentence_transformers.base.sampler import BatchSamplers

    if not schedule.length_grouped:
        return BatchSamplers.BATCH_SAMPLER
    return LengthGroupedBatches(tuple(pair_lengths(model, rows)))


def pair_lengths(model: CrossEncoder, rows: Sequence[LabeledPair]) -> list[int]:
    """Tokens of each pair as the model reads it (both texts, truncated at its max length)."""
    lengths: list[int] = []
    for start in range(0, len(rows), 4096):  # bounded memory: the token ids are dropped chunk by chunk
        chunk = rows[start : start + 4096]
        encoded = model.tokenizer(
            [pair.first for pair in chunk],
            [pair.second for pair in chunk],
            truncation=True,
            max_length=model.max_length,
        )
        lengths += [len(ids) for ids in encoded["input_ids"]]
    return lengths


class EpochSeededLengthGroups:
    """The pair indices of one epoch, shuffled and grouped by length: a pure function of (seed, epoch).

    transformers' ``get_length_grouped_indices`` shuffles the pairs, cuts them into pools of 50
    batches and sorts each pool by length, so consecutive ``batch_size`` indices are pairs of
    similar length. Its shuffle is seeded with ``seed + epoch`` at every epoch, which the trainer
    announces through ``set_epoch`` (as accelerate's ``SeedableRandomSampler`` does for random
    batches): a run resumed at an epoch boundary draws the batches of an uninterrupted one.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int) -> None:
        self.lengths, self.batch_size, self.seed = list(lengths), batch_size, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        import torch
        from transformers.trainer_pt_utils import get_length_grouped_indices

        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(get_length_grouped_indices(self.lengths, self.batch_size, generator=generator))


@dataclass(frozen=True)
class LengthGroupedBatches:
    """A batch sampler factory for sentence-transformers' trainer: batches of pairs of similar length.

    Each epoch's batches come from :class:`EpochSeededLengthGroups`, so a batch is padded to a
    length close to its pairs' own (PAWS-X train at 128 tokens: 1.02x the real tokens instead of
    1.69x for random batches). Pairs of one batch are then of similar length, which random
    batches are not: a different run, not a faster replay of the default one. A class, not a
    closure: the trainer pickles its arguments into every checkpoint.
    """

    lengths: tuple[int, ...]  # (rows,) tokens of each training pair, in dataset order

    def __call__(
        self,
        dataset: Any,
        batch_size: int,
        drop_last: bool,
        valid_label_columns: list[str] | None = None,
        generator: Any = None,
        seed: int = 0,
    ) -> Any:
        from sentence_transformers.base.sampler import DefaultBatchSampler

        if len(dataset) != len(self.lengths):
            raise ValueError(f"{len(self.lengths)} pair lengths for a dataset of {len(dataset)} rows")
        return DefaultBatchSampler(
            EpochSeededLengthGroups(self.lengths, batch_size, seed),  # type: ignore[arg-type]  # a sampler
            batch_size=batch_size,
            drop_last=drop_last,
            valid_label_columns=valid_label_columns,
            generator=generator,
            seed=seed,
        )


def load_for_training(folder: Path, max_length: int, seed: int, say: Callable[[str], None]) -> LoadedModel:
    """The cross-encoder to train from ``folder``: a fresh head seeded with ``seed``, raw pairs checked."""
    from transformers import set_seed

    limit = position_limit(folder)
    length = min(max_length, limit) if limit else max_length
    if length != max_length:
        say(f"max length {max_length} > the model's {limit} positions: using {length}")
    set_seed(seed)  # the fresh head's initialisation
    start = time.perf_counter()
    model = load_cross_encoder(folder, length)
    seconds = time.perf_counter() - start
    check_raw_pairs(model)
    return LoadedModel(model, length, seconds)


class LoadedModel(NamedTuple):
    model: CrossEncoder
    max_length: int  # tokens per pair, after clamping to the model's positions
    seconds: float  # loading time


# one evaluation: its fields for the epoch's record, and the raw scores behind them (kept for the last only)
Evaluate = Callable[[], tuple[dict[str, Any], dict[str, Any]]]


class EpochLog:
    """A per-epoch run as it goes: one record per epoch (``epoch``, ``train_seconds``, the evaluation's
    fields, ``eval_seconds``), the epoch times and the last raw scores, in ``state``; with a checkpoint
    folder, ``resume.json`` is rewritten after every record.

    ``evaluate`` None: the records hold the epoch and its time only. ``show`` is called with each record.
    """

    def __init__(
        self,
        resume: Resume,
        settings: dict[str, Any],
        checkpoint_dir: Path | None,
        evaluate: Evaluate | None,
        show: Callable[[dict[str, Any]], None],
    ) -> None:
        self.state = Resume(resume.checkpoint, list(resume.evaluations), list(resume.epoch_seconds), resume.last_raw)
        self.settings, self.checkpoint_dir = settings, checkpoint_dir
        self.evaluate, self.show = evaluate, show

    def record(self, epoch: int, train_seconds: float | None) -> None:
        """Evaluate now and record it as ``epoch`` (0: before training)."""
        start = time.perf_counter()
        fields, raw = self.evaluate() if self.evaluate is not None else ({}, {})
        result = {"epoch": epoch, "train_seconds": train_seconds, **fields}
        if self.evaluate is not None:
            result["eval_seconds"] = time.perf_counter() - start
        self.state.evaluations.append(result)
        self.state = replace(self.state, last_raw=raw)
        self.show(result)
        if self.checkpoint_dir is not None:  # before the epoch's checkpoint: a crash between redoes the epoch
            write_resume(self.checkpoint_dir, self.settings, self.state)

    def after_epoch(self, seconds: float) -> None:
        """:func:`train_cross_encoder`'s callback: the epoch's time, then its record."""
        self.state.epoch_seconds.append(seconds)
        self.record(len(self.state.epoch_seconds), seconds)

    def add_losses(self, outcome: TrainingOutcome) -> None:
        """Each record's ``train_loss``: the Trainer's logged mean loss of that epoch (None for epoch 0)."""
        for result in self.state.evaluations:
            result["train_loss"] = outcome.losses_by_epoch.get(result["epoch"])


def _epoch_callback(after_epoch: Callable[[float], None], stop_after_epochs: int | None) -> Any:
    """A ``TrainerCallback`` timing each epoch (GPU synchronised) and ending the sitting when asked."""
    from transformers import TrainerCallback

    class EpochEnd(TrainerCallback):  # type: ignore[misc]
        epoch_start = 0.0
        epochs_this_sitting = 0

        def on_epoch_begin(self, *_: Any, **__: Any) -> None:
            synchronize()
            self.epoch_start = time.perf_counter()

        def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            synchronize()
            after_epoch(time.perf_counter() - self.epoch_start)
            self.epochs_this_sitting += 1
            if stop_after_epochs is not None and self.epochs_this_sitting >= stop_after_epochs:
                control.should_training_stop = True  # the Trainer still saves this epoch's checkpoint

    return EpochEnd()
