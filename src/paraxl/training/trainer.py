"""The training loop: config in, fine-tuned sentence-transformers folder out.

Output folder layout::

    config.json          the validated config of the run (a resume must match it)
    metrics.jsonl        one JSON object per logged step / evaluation
    checkpoints/step-N/  resumable state (model, optimizer, scheduler, RNG, position; manifest.json: checksums)
    best/                the checkpoint with the best validation metric (if validating)
    final/               the model after the last step
    summary.json         what the run did, how long it took

Resuming is automatic: a run whose output folder holds checkpoints continues from the
latest intact one (see :mod:`paraxl.training.resume`), and ends with the same weights as an
uninterrupted run (tested, for one task and for several).

A multi-task run (``tasks:``) trains one task per step, picked by :mod:`paraxl.training.tasks`;
its log lines name the step's task and each task's mean loss since the previous line, and its
summary records each task's steps, examples and data files.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from rich.console import Console

from paraxl.errors import InputError
from paraxl.io.hashing import data_file_records
from paraxl.loading.backends import load_bi_encoder
from paraxl.modeling.bi_encoder import BiEncoder
from paraxl.modeling.finite import check_finite_tensors
from paraxl.modeling.threads import configure_torch_threads
from paraxl.paths import data_dir as resolve_data_dir
from paraxl.training.checkpoint import (
    TaskProgress,
    TrainerState,
    load_trainer_state,
    restore_optimizer,
    rng_state,
    save_checkpoint,
)
from paraxl.training.config import TrainConfig
from paraxl.training.distributed import DistContext, init_distributed, pick_device, shutdown_distributed
from paraxl.training.objective import step_loss
from paraxl.training.optimizer import build_optimizer
from paraxl.training.precision import autocast_for, resolve_precision
from paraxl.training.progress import StepProgress
from paraxl.training.resume import newest_intact, remove_stale_temp_folders
from paraxl.training.run_files import append_metrics, check_output, truncate_metrics, write_json
from paraxl.training.step import accumulate_step_gradient
from paraxl.training.tasks import (
    Batch,
    TaskLosses,
    TaskSchedule,
    TrainingTask,
    describe_tasks,
    distinct_records,
    fresh_state,
    load_tasks,
    next_step,
    schedule_for,
    sync_single_task,
    task_progress,
    task_summary,
    total_steps,
)
from paraxl.training.teacher_coverage import TeacherCoverage
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
    # path (relative to the data dir), sha256, bytes of each file read, the teacher scores included
    data_files: list[dict[str, Any]]
    precision: str = "fp32"  # what `precision` resolved to on this machine (auto: bf16 where native)
    threads: dict[str, Any] = field(default_factory=dict)  # torch intra-/inter-op threads, physical cores
    # multi-task runs: per task its name, weight, steps, examples, sampler position, data files;
    # None (and absent from summary.json) for one task
    tasks: list[dict[str, Any]] | None = None
    # runs with `distill`: per task (and kind of pair) the pairs drawn and how many the teacher
    # scored, over the steps this process trained (a resumed run: since the resume); None (and
    # absent) without a teacher
    teacher_coverage: dict[str, dict[str, object]] | None = None

    def record(self) -> dict[str, Any]:
        """The JSON object of ``summary.json``."""
        record = asdict(self)
        for optional in ("tasks", "teacher_coverage"):
            if record[optional] is None:
                del record[optional]
        return record


@dataclass(frozen=True)
class _Loop:
    """What the training loop reads besides the model: the tasks and which one each step trains."""

    tasks: list[TrainingTask]
    schedule: TaskSchedule
    validation: PairValidation | None
    total_steps: int


def train(
    config: TrainConfig,
    *,
    data_dir: str | Path | None = None,
    overwrite: bool = False,
    show_progress: bool = True,
    console: Console | None = None,
) -> TrainSummary:
    """Run (or resume) the training that ``config`` describes."""
    device = pick_device(config.device)
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
        self.precision = resolve_precision(config.precision, device)
        self.autocast = autocast_for(self.precision, device)
        # one intra-op thread per physical core at most: hyper-thread siblings slow GEMMs down
        self.threads = configure_torch_threads()
        self.eval_seconds = 0.0  # set again when the training loop starts
        self.last_validation: dict[str, float] | None = None
        self.coverage = TeacherCoverage()
        readers = [task.data for task in config.task_list() if task.data.reads_data_dir]
        needs_data_dir = bool(readers) or config.validation is not None
        folder = data_dir if data_dir is not None else config.data_dir
        self.data_dir = resolve_data_dir(folder) if needs_data_dir else None
        if needs_data_dir and self.data_dir is None:
            reader = f"data kind {readers[0].kind}" if readers else "validation"
            raise InputError(f"{reader} reads the benchmark data folder: pass --data-dir or set $PARAXL_DATA_DIR")
        check_output(self.output, config, overwrite)

    # ------------------------------------------------------------------ set-up
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

    # ------------------------------------------------------------------ run
    def run(self) -> TrainSummary:
        tasks = self._data()
        total = total_steps(self.config, tasks)
        validation = self._validation()
        checkpoint, state, model, optimizer, scheduler = self._restore(total)
        if self.context.is_main:
            self.output.mkdir(parents=True, exist_ok=True)
            write_json(self.output / "config.json", self.config.model_dump(mode="json"))
            # a fresh start (-1) redoes step 0's validation too: no line of an earlier try is kept
            note = truncate_metrics(self.output / "metrics.jsonl", state.step if checkpoint else -1)
            if note:
                self._say(note)
        schedule = schedule_for(self.config, tasks)
        for line in describe_tasks(self.config, tasks, schedule, total, self.precision):
            self._say(line)

        first_validation = self.last_validation = None
        if validation is not None and state.step == 0:
            first_validation = self.last_validation = self._validate(model, validation, state)
        resumed_from = state.step if checkpoint else None
        base_elapsed = state.elapsed_s
        progress = task_progress(state, tasks)
        loop = _Loop(tasks, schedule, validation, total)
        total_seconds = base_elapsed + self._train_steps(loop, model, optimizer, scheduler, state, progress)
        files = [data_file_records(task.files_read, self.data_dir) for task in tasks]
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
            last_validation=self.last_validation,
            skipped_rows=sum(task.data.skipped_rows for task in tasks),
            dropped_units=sum(task.data.dropped_units for task in tasks),
            data_files=distinct_records(record for records in files for record in records),
            precision=self.precision,
            threads=self.threads,
            tasks=[task_summary(*each) for each in zip(tasks, progress, files, strict=True)]
            if self.config.is_multi_task
            else None,
            teacher_coverage=self.coverage.record(),
        )
        for line in self.coverage.notes():
            self._say(line)
        if self.context.is_main:
            self._check_finite(model, state)
            model.save(self.output / "final")
            write_json(self.output / "summary.json", summary.record())
        self.context.barrier()
        return summary

    def _data(self) -> list[TrainingTask]:
        tasks = load_tasks(self.config, self.data_dir)
        for task in tasks:
            if task.teacher is not None:
                scores = task.teacher[0]
                where = f" for task {task.name}" if self.config.is_multi_task else ""
                self._say(f"distilling {len(scores)} teacher-scored pairs from {scores.source}{where}")
        return tasks

    def _restore(self, total_steps: int) -> tuple[Path | None, TrainerState, BiEncoder, torch.optim.Optimizer, Any]:
        """The newest intact checkpoint (None: a fresh start, seeded), its state, model, optimizer
        and scheduler; damaged checkpoints are reported and set aside (see training.resume)."""
        if self.context.is_main:
            note = remove_stale_temp_folders(self.output)
            if note:
                self._say(note)
        resumed, damaged = newest_intact(
            self.output, partial(self._resume_from, total_steps=total_steps), self._say, self.context.is_main
        )
        if resumed is not None:
            state, model, optimizer, scheduler = resumed.loaded
            unverified = "" if resumed.verified else " (written before checksums: not verified)"
            self._say(f"resuming from {resumed.checkpoint} (step {state.step} of {total_steps}){unverified}")
            return resumed.checkpoint, state, model, optimizer, scheduler
        if damaged:
            self._say(f"no intact checkpoint in {self.output}: starting over")
        torch.manual_seed(self.config.seed + self.context.rank)
        model = self._load_model(None)
        optimizer, scheduler = build_optimizer(model, self.config.optim, total_steps)
        return None, fresh_state(self.config), model, optimizer, scheduler

    def _resume_from(
        self, checkpoint: Path, total_steps: int
    ) -> tuple[TrainerState, BiEncoder, torch.optim.Optimizer, Any]:
        """Everything a run continues from, read from ``checkpoint`` (verified by the caller)."""
        state = load_trainer_state(checkpoint)
        model = self._load_model(checkpoint)
        optimizer, scheduler = build_optimizer(model, self.config.optim, total_steps)
        restore_optimizer(checkpoint, optimizer, scheduler, self.context.rank)
        return state, model, optimizer, scheduler

    def _train_steps(
        self,
        loop: _Loop,
        model: BiEncoder,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        state: TrainerState,
        positions: Sequence[TaskProgress],
    ) -> float:
        """Train from ``state`` to ``loop.total_steps``; return the training seconds (validation left out).

        ``positions``: each task's sampler position and counts (see :func:`paraxl.training.tasks.task_progress`).
        """
        config = self.config
        streams = [task.batches(position) for task, position in zip(loop.tasks, positions, strict=True)]
        task_losses = TaskLosses()
        started, base_elapsed, start_examples = time.perf_counter(), state.elapsed_s, state.examples
        self.eval_seconds = 0.0  # validation time from here on is left out of training time
        validate_every = config.validation.every_steps if config.validation else 0
        with StepProgress(loop.total_steps, state.step, self.show_progress, self.console) as progress:
            while state.step < loop.total_steps:
                chosen, step_batches = next_step(loop.schedule, loop.tasks, streams, state.step)
                task, position = loop.tasks[chosen], positions[chosen]
                loss, grad_norm = self._step(task, step_batches, model, optimizer, scheduler)
                last_epoch, last_batch, _ = step_batches[-1]
                position.epoch, position.batch = last_epoch, last_batch + 1
                position.steps += 1
                position.examples += task.examples_per_step
                state.step += 1
                state.examples += task.examples_per_step
                sync_single_task(state, positions)
                task_losses.add(task.name, loss)
                run_seconds = time.perf_counter() - started - self.eval_seconds
                rate = (state.examples - start_examples) / max(run_seconds, 1e-9)
                progress(loss, rate)
                last = state.step == loop.total_steps
                if state.step % config.log_every == 0 or last:
                    record = {"step": state.step, "loss": loss, "lr": scheduler.get_last_lr()[0]}
                    record |= {"grad_norm": grad_norm, "examples_per_s": rate, "epoch": position.epoch}
                    if config.is_multi_task:  # the step's task; each task's mean loss since the last line
                        record |= {"task": task.name, "tasks": task_losses.flush()}
                    self._log(record)
                if loop.validation is not None and (state.step % validate_every == 0 or last):
                    self.last_validation = self._validate(model, loop.validation, state)
                if state.step % config.checkpoint_every == 0 or last:
                    state.elapsed_s = base_elapsed + time.perf_counter() - started - self.eval_seconds
                    self._checkpoint(model, optimizer, scheduler, state)
        return time.perf_counter() - started - self.eval_seconds

    def _step(
        self,
        task: TrainingTask,
        step_batches: list[Batch],
        model: BiEncoder,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
    ) -> tuple[float, float | None]:
        """One optimisation step of ``task`` on ``step_batches``; its loss and the gradient norm before clipping."""
        config = self.config
        layout = task.layout(config.seed, step_batches)
        targets = None if task.teacher is None else (task.teacher[0].targets(layout), task.teacher[1])
        if targets is not None:
            self.coverage.add(task.name, layout, targets[0], task.in_unit_pairs)
        section = task.config
        optimizer.zero_grad(set_to_none=True)
        loss = accumulate_step_gradient(
            model,
            layout,
            partial(step_loss, layout=layout, loss=section.loss, mining=section.mining, teacher=targets),
            context=self.context,
            grad_cache=section.uses_grad_cache,
            chunk_size=EMBED_CHUNK,
            prompt_name=config.model.prompt_name,
            autocast=self.autocast,
        )
        trainable = [p for p in model.parameters() if p.requires_grad]
        max_norm = config.optim.max_grad_norm
        grad_norm = float(torch.nn.utils.clip_grad_norm_(trainable, max_norm)) if max_norm else None
        optimizer.step()
        scheduler.step()
        return loss, grad_norm

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
            self._check_finite(model, state)
            state.best_metric, state.best_step = metrics["accuracy"], state.step
            model.save(self.output / "best")
            write_json(self.output / "best" / "paraxl_validation.json", {"step": state.step, **metrics})
        self.eval_seconds += time.perf_counter() - began
        return metrics

    def _checkpoint(self, model: BiEncoder, optimizer: Any, scheduler: Any, state: TrainerState) -> None:
        self._check_finite(model, state)  # every process holds the same weights: all refuse together
        states = [rng_state()]
        if self.context.active:
            gathered: list[Any] = [None] * self.context.world_size
            dist.all_gather_object(gathered, states[0])
            states = gathered
        if self.context.is_main:
            save_checkpoint(self.output, model, optimizer, scheduler, state, self.config.keep_checkpoints, states)
        self.context.barrier()

    @staticmethod
    def _check_finite(model: BiEncoder, state: TrainerState) -> None:
        """A NaN or infinite weight stops the run before it is written (checkpoint, best or final):
        resuming would only go on from it; the previous checkpoint stays the newest."""
        check_finite_tensors(model.state_dict(), f"step {state.step}: the trained model")

    def _log(self, record: dict[str, Any]) -> None:
        if self.context.is_main:
            append_metrics(self.output / "metrics.jsonl", record)

    def _say(self, message: str) -> None:
        if self.context.is_main:  # one line however long (a path), and no markup in paths
            self.console.print(message, soft_wrap=True, markup=False)
