"""The training loop: config in, fine-tuned sentence-transformers folder out.

Output folder layout::

    config.json          the validated config of the run (a resume must match it)
    metrics.jsonl        one JSON object per logged step / evaluation
    checkpoints/step-N/  resumable state (model, optimizer, scheduler, RNG, position)
    best/                the checkpoint with the best validation metric (if validating)
    final/               the model after the last step
    summary.json         what the run did, how long it took

Resuming is automatic: a run whose output folder holds checkpoints continues from the
latest one, and ends with the same weights as an uninterrupted run (tested).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from transformers import get_scheduler

from paraxl.data.records import TextGroup, TrainingData
from paraxl.data.sampler import GroupBatchSampler
from paraxl.errors import InputError
from paraxl.io.atomic import atomic_path
from paraxl.io.hashing import data_file_records
from paraxl.loading.backends import load_bi_encoder
from paraxl.modeling.bi_encoder import BiEncoder
from paraxl.paths import data_dir as resolve_data_dir
from paraxl.training.checkpoint import (
    TrainerState,
    latest_checkpoint,
    load_trainer_state,
    restore_optimizer,
    rng_state,
    save_checkpoint,
)
from paraxl.training.config import TrainConfig
from paraxl.training.data_loading import load_training_data
from paraxl.training.distillation import TeacherScores
from paraxl.training.distributed import DistContext, init_distributed, shutdown_distributed
from paraxl.training.layout import StepLayout, TranslationPositives, group_layout, pair_layout
from paraxl.training.objective import step_loss
from paraxl.training.step import accumulate_step_gradient
from paraxl.training.validation import PairValidation

EMBED_CHUNK = 32  # texts per forward pass when caching embeddings (the memory bound)


@dataclass
class TrainSummary:
    output_dir: str
    steps: int
    examples: int
    train_seconds: float
    examples_per_second: float
    resumed_from_step: int | None
    best_metric: float | None
    best_step: int | None
    first_validation: dict[str, float] | None
    last_validation: dict[str, float] | None
    skipped_rows: int
    dropped_units: int
    data_files: list[dict[str, Any]]  # path (relative to the data dir), sha256, bytes of each file read


def train(
    config: TrainConfig,
    *,
    data_dir: str | Path | None = None,
    overwrite: bool = False,
    show_progress: bool = True,
    console: Console | None = None,
) -> TrainSummary:
    """Run (or resume) the training that ``config`` describes."""
    device = _pick_device(config.device)
    context = init_distributed(device)
    if context.active and device.type == "cuda":
        device = torch.device("cuda", context.rank % torch.cuda.device_count())
    console = console or Console(stderr=True)
    try:
        return _Run(config, data_dir, device, context, console, overwrite, show_progress).run()
    finally:
        shutdown_distributed(context)


class _Run:
    def __init__(
        self,
        config: TrainConfig,
        data_dir: str | Path | None,
        device: torch.device,
        context: DistContext,
        console: Console,
        overwrite: bool,
        show_progress: bool,
    ) -> None:
        self.config = config
        self.device = device
        self.context = context
        self.console = console
        self.show_progress = show_progress and context.is_main
        self.output = Path(config.output_dir)
        self.eval_seconds = 0.0  # set again when the training loop starts
        needs_data_dir = config.data.kind in ("pawsx", "xnli") or config.validation is not None
        folder = data_dir if data_dir is not None else config.data_dir
        self.data_dir = resolve_data_dir(folder) if needs_data_dir else None
        self._check_output(overwrite)

    # ------------------------------------------------------------------ set-up
    def _check_output(self, overwrite: bool) -> None:
        config_file = self.output / "config.json"
        if (self.output / "summary.json").exists() and not overwrite:
            raise InputError("holds a finished run; choose another output_dir or pass --overwrite", self.output)
        if overwrite or not config_file.exists() or latest_checkpoint(self.output) is None:
            return
        previous = json.loads(config_file.read_text())
        current = self.config.model_dump(mode="json")
        changed = sorted(key for key in current if previous.get(key) != current[key] and key != "max_steps")
        if changed:
            raise InputError(
                f"has checkpoints of a run with a different config ({', '.join(changed)} differ); "
                "resume with the same config, or choose another output_dir",
                self.output,
            )

    def _load_model(self, checkpoint: Path | None) -> BiEncoder:
        model = BiEncoder.load(checkpoint / "model") if checkpoint else load_bi_encoder(self.config.model.name)
        if checkpoint is None:
            length = self.config.model.max_seq_length
            if length is not None:
                limit = int(getattr(model.backbone.config, "max_position_embeddings", length))
                model.settings = replace(model.settings, max_seq_length=min(length, limit))
            if self.config.model.freeze_word_embeddings:
                model.freeze_word_embeddings()
        return model.to(self.device).train()

    def _optimizer(self, model: BiEncoder, total_steps: int) -> tuple[torch.optim.Optimizer, Any]:
        optim = self.config.optim
        trainable = [p for p in model.parameters() if p.requires_grad]
        # no weight decay on biases and LayerNorm weights (1-D), as in BERT
        groups = [
            {"params": [p for p in trainable if p.ndim >= 2], "weight_decay": optim.weight_decay},
            {"params": [p for p in trainable if p.ndim < 2], "weight_decay": 0.0},
        ]
        optimizer = torch.optim.AdamW(groups, lr=optim.lr)
        schedule = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}[optim.schedule]
        warmup = math.ceil(optim.warmup_ratio * total_steps)
        scheduler = get_scheduler(schedule, optimizer, num_warmup_steps=warmup, num_training_steps=total_steps)
        return optimizer, scheduler

    def _autocast(self) -> Callable[[], AbstractContextManager[object]]:
        if self.config.precision == "bf16":
            return partial(torch.autocast, device_type=self.device.type, dtype=torch.bfloat16)
        return nullcontext

    # ------------------------------------------------------------------ batches
    def _batches(self, sampler: GroupBatchSampler, state: TrainerState) -> Iterator[tuple[int, int, list[int]]]:
        """Yield ``(epoch, batch, unit indices)`` from the sampler position in ``state`` onwards."""
        epoch, index = state.epoch, state.batch
        while True:
            plan = sampler.epoch_batches(epoch)
            if not plan:
                raise InputError("the sampler produced no batch: too few groups for the batch size")
            while index < len(plan):
                yield epoch, index, plan[index]
                index += 1
            epoch, index = epoch + 1, 0

    def _layout(
        self,
        groups: list[TextGroup],
        batches: list[tuple[int, int, list[int]]],
        translations: TranslationPositives | None,
    ) -> StepLayout:
        epoch, index, _ = batches[0]
        # drawing texts depends only on (seed, position): a resumed run draws the same
        rng = np.random.default_rng([self.config.seed, epoch, index])
        units = [[groups[i] for i in batch] for _, _, batch in batches]
        loss = self.config.loss
        if loss.kind == "multi_positive":
            return group_layout(units, rng, loss.members_per_group)
        return pair_layout(units, rng, loss.explicit_negatives, translations)

    # ------------------------------------------------------------------ run
    def run(self) -> TrainSummary:
        config, context = self.config, self.context
        data = load_training_data(config.data, self.data_dir)
        sampler = GroupBatchSampler([g.group_id for g in data.groups], config.batch_size, seed=config.seed)
        translations = TranslationPositives.at_rate(data.groups, config.data.translation_positives)
        distill = config.distill
        teacher = (TeacherScores.read(distill.scores), distill) if distill else None  # read once, used every step
        if teacher is not None:
            self._say(f"distilling {len(teacher[0])} teacher-scored pairs from {teacher[0].source}")
        batches_per_epoch = sampler.batches_per_epoch()
        steps_per_epoch = max(batches_per_epoch // config.mini_batches_per_step, 1)
        total_steps = config.max_steps or math.ceil(float(config.epochs or 1) * steps_per_epoch)
        validation = self._validation()

        checkpoint = latest_checkpoint(self.output)
        state = load_trainer_state(checkpoint) if checkpoint else TrainerState()
        if checkpoint is None:
            torch.manual_seed(config.seed + context.rank)
        model = self._load_model(checkpoint)
        optimizer, scheduler = self._optimizer(model, total_steps)
        if checkpoint is not None:
            restore_optimizer(checkpoint, optimizer, scheduler, context.rank)
            self._say(f"resuming from {checkpoint} (step {state.step} of {total_steps})")
        if context.is_main:
            self.output.mkdir(parents=True, exist_ok=True)
            _write_json(self.output / "config.json", config.model_dump(mode="json"))
            _truncate_metrics(self.output / "metrics.jsonl", state.step)
        self._describe_data(data, batches_per_epoch, total_steps)

        first_validation = last_validation = None
        if validation is not None and state.step == 0:
            first_validation = last_validation = self._validate(model, validation, state)
        stream = self._batches(sampler, state)
        resumed_from = state.step if checkpoint else None
        started, base_elapsed, start_examples = time.perf_counter(), state.elapsed_s, state.examples
        self.eval_seconds = 0.0  # validation time from here on is left out of training time
        trainable = [p for p in model.parameters() if p.requires_grad]
        validate_every = config.validation.every_steps if config.validation else 0
        with self._progress(total_steps, state.step) as progress:
            while state.step < total_steps:
                step_batches = [next(stream) for _ in range(config.mini_batches_per_step)]
                layout = self._layout(data.groups, step_batches, translations)
                targets = None if teacher is None else (teacher[0].targets(layout), teacher[1])
                optimizer.zero_grad(set_to_none=True)
                loss = accumulate_step_gradient(
                    model,
                    layout,
                    partial(step_loss, layout=layout, loss=config.loss, mining=config.mining, teacher=targets),
                    context=context,
                    grad_cache=config.uses_grad_cache,
                    chunk_size=EMBED_CHUNK,
                    prompt_name=config.model.prompt_name,
                    autocast=self._autocast(),
                )
                grad_norm = (
                    float(torch.nn.utils.clip_grad_norm_(trainable, config.optim.max_grad_norm))
                    if config.optim.max_grad_norm
                    else None
                )
                optimizer.step()
                scheduler.step()
                last_epoch, last_batch, _ = step_batches[-1]
                state.step += 1
                state.epoch, state.batch = last_epoch, last_batch + 1
                state.examples += config.batch_size * config.mini_batches_per_step
                run_seconds = time.perf_counter() - started - self.eval_seconds
                rate = (state.examples - start_examples) / max(run_seconds, 1e-9)
                progress(loss, rate)
                if state.step % config.log_every == 0 or state.step == total_steps:
                    record = {"step": state.step, "loss": loss, "lr": scheduler.get_last_lr()[0]}
                    record |= {"grad_norm": grad_norm, "examples_per_s": rate, "epoch": state.epoch}
                    self._log(record)
                if validation is not None and (state.step % validate_every == 0 or state.step == total_steps):
                    last_validation = self._validate(model, validation, state)
                if state.step % config.checkpoint_every == 0 or state.step == total_steps:
                    state.elapsed_s = base_elapsed + time.perf_counter() - started - self.eval_seconds
                    self._checkpoint(model, optimizer, scheduler, state)
        total_seconds = base_elapsed + time.perf_counter() - started - self.eval_seconds
        summary = TrainSummary(
            output_dir=str(self.output),
            steps=state.step,
            examples=state.examples,
            train_seconds=total_seconds,
            examples_per_second=state.examples / max(total_seconds, 1e-9),
            resumed_from_step=resumed_from,
            best_metric=state.best_metric,
            best_step=state.best_step,
            first_validation=first_validation,
            last_validation=last_validation,
            skipped_rows=data.skipped_rows,
            dropped_units=data.dropped_units,
            data_files=data_file_records(data.sources, self.data_dir),
        )
        if context.is_main:
            model.save(self.output / "final")
            _write_json(self.output / "summary.json", asdict(summary))
        context.barrier()
        return summary

    # ------------------------------------------------------------------ pieces
    def _validation(self) -> PairValidation | None:
        spec = self.config.validation
        if spec is None or not self.context.is_main:
            return None
        assert self.data_dir is not None
        return PairValidation.pawsx(self.data_dir, spec.split, spec.protocol, spec.languages, spec.batch_size)

    def _validate(self, model: BiEncoder, validation: PairValidation, state: TrainerState) -> dict[str, float]:
        began = time.perf_counter()
        metrics = validation.evaluate(model, self.config.model.prompt_name)
        self._log({"step": state.step, "validation": metrics})
        self._say(
            f"step {state.step}: validation accuracy {metrics['accuracy']:.4f} (threshold {metrics['threshold']:.3f})"
        )
        if state.best_metric is None or metrics["accuracy"] > state.best_metric:
            state.best_metric, state.best_step = metrics["accuracy"], state.step
            model.save(self.output / "best")
            _write_json(self.output / "best" / "paraxl_validation.json", {"step": state.step, **metrics})
        self.eval_seconds += time.perf_counter() - began
        return metrics

    def _checkpoint(self, model: BiEncoder, optimizer: Any, scheduler: Any, state: TrainerState) -> None:
        states = [rng_state()]
        if self.context.active:
            gathered: list[Any] = [None] * self.context.world_size
            dist.all_gather_object(gathered, states[0])
            states = gathered
        if self.context.is_main:
            save_checkpoint(self.output, model, optimizer, scheduler, state, self.config.keep_checkpoints, states)
        self.context.barrier()

    def _log(self, record: dict[str, Any]) -> None:
        if not self.context.is_main:
            return
        with (self.output / "metrics.jsonl").open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def _say(self, message: str) -> None:
        if self.context.is_main:
            self.console.print(message)

    def _describe_data(self, data: TrainingData, batches_per_epoch: int, total_steps: int) -> None:
        config = self.config
        self._say(
            f"training data: {data.summary()}; {batches_per_epoch} mini-batches of {config.batch_size} per epoch; "
            f"{total_steps} steps of {config.mini_batches_per_step} mini-batch(es)"
        )

    def _progress(self, total: int, done: int) -> _StepProgress:
        return _StepProgress(total, done, self.show_progress, self.console)


class _StepProgress:
    """A rich bar with the loss and examples/s; a no-op when hidden."""

    def __init__(self, total: int, done: int, show: bool, console: Console) -> None:
        self.bar = Progress(
            TextColumn("training"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}  {task.fields[rate]:.1f} ex/s"),
            TimeRemainingColumn(),
            console=console,
            disable=not show,
        )
        self.task = self.bar.add_task("train", total=total, completed=done, loss=float("nan"), rate=0.0)

    def __enter__(self) -> Callable[[float, float], None]:
        self.bar.start()
        return lambda loss, rate: self.bar.update(self.task, advance=1, loss=loss, rate=rate)

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()


def _pick_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("device: cuda requested but no CUDA device is available")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _write_json(path: Path, payload: object) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop log lines beyond the resumed step: those steps are about to be redone."""
    if not path.exists():
        return
    kept = [line for line in path.read_text(encoding="utf-8").splitlines() if json.loads(line).get("step", 0) <= step]
    with atomic_path(path) as tmp:
        tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
