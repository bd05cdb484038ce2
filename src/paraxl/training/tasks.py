"""The tasks of a run, and which one each step trains.

A run trains one task (the top-level ``data``, ``loss``, ... of a one-task config) or several
(``tasks:``). Each task has its own data, group-aware sampler and sampler position, loss, hard
negatives, distillation and batch shape; the run has one model, one optimizer, one learning-rate
schedule and one checkpoint. A step trains one task: its mini-batches all come from that task
and its loss is that task's loss.

Which task step ``s`` trains depends only on ``(seed, s)``, so a resumed run picks the same tasks
as an uninterrupted one without storing the schedule:

- ``proportional`` (the default): an independent draw per step; task ``t`` with probability
  proportional to ``weight_t x steps_per_epoch_t`` (its mini-batches per epoch over its
  mini-batches per step). With every weight 1 each task passes through its data at the same
  rate, i.e. examples-proportional mixing (MT-DNN, Liu et al. 2019): the steps are those of the
  single-task runs shuffled together, and no small task is cycled many times over while a large
  one is barely seen. ``weight`` tilts that on purpose (2: twice as many epochs of that task).
- ``round_robin``: task ``s mod n`` in the listed order; every task gets the same number of
  steps whatever its size (a small task then repeats its data more often than a large one).

A one-task run is one task with the draws and checkpoint layout it had before tasks existed: its
sampler and layout random streams are ``(seed, epoch[, batch])``; task ``i`` of a multi-task run
draws from ``(seed, i, epoch[, batch])`` instead, so two tasks on the same data still differ.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from paraxl.data.records import TrainingData
from paraxl.data.sampler import GroupBatchSampler
from paraxl.errors import InputError, ModelFormatError
from paraxl.losses.registry import step_needs
from paraxl.losses.step import StepNeeds
from paraxl.training.checkpoint import TaskProgress, TrainerState
from paraxl.training.config import DistillConfig, TaskConfig, TrainConfig
from paraxl.training.data_loading import load_training_data
from paraxl.training.distillation import TeacherScores
from paraxl.training.layout import StepLayout, TranslationPositives, step_layout
from paraxl.training.teacher_scores import in_unit_keys

Teacher = tuple[TeacherScores, DistillConfig]  # the teacher's scores, read once, and how to distil them
Sampling = Literal["proportional", "round_robin"]
Batch = tuple[int, int, list[int]]  # (epoch, batch index, unit indices)

# the schedule's random stream is (seed, SCHEDULE_STREAM, step): apart from every sampler's
# (seed, epoch) / (seed, task, epoch) and layout stream, whatever the epoch and task counts
SCHEDULE_STREAM = 0x7461736B  # "task"


@dataclass(frozen=True)
class TaskSchedule:
    """Which task each step trains: a pure function of ``(seed, step)``."""

    sampling: Sampling
    probabilities: tuple[float, ...]  # (tasks,) the proportional draw's; sum 1
    seed: int

    @classmethod
    def of(
        cls, sampling: Sampling, weights: Sequence[float], steps_per_epoch: Sequence[float], seed: int
    ) -> TaskSchedule:
        """``weights`` and ``steps_per_epoch``: one per task, positive (see the module docstring)."""
        mass = np.asarray(weights, dtype=np.float64) * np.asarray(steps_per_epoch, dtype=np.float64)  # (tasks,)
        if mass.size == 0 or not np.all(mass > 0):
            raise ValueError(f"every task needs a positive weight and steps per epoch, got {mass.tolist()}")
        return cls(sampling, tuple(float(p) for p in mass / mass.sum()), seed)

    def task_at(self, step: int) -> int:
        """The index of the task that step ``step`` (0-based) trains."""
        count = len(self.probabilities)
        if count == 1:
            return 0
        if self.sampling == "round_robin":
            return step % count
        rng = np.random.default_rng([self.seed, SCHEDULE_STREAM, step])
        return int(rng.choice(count, p=self.probabilities))


@dataclass(frozen=True)
class TrainingTask:
    """One task of a run, ready to train: its config, units, sampler and what its steps read."""

    index: int
    config: TaskConfig
    data: TrainingData
    sampler: GroupBatchSampler
    translations: TranslationPositives | None
    teacher: Teacher | None
    stream: tuple[int, ...]  # () for a one-task run, (index,) in a multi-task run

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def needs(self) -> StepNeeds:
        return step_needs(self.config.loss)

    @property
    def steps_per_epoch(self) -> int:
        """Whole steps in an epoch of this task (at least 1)."""
        return max(self.sampler.batches_per_epoch() // self.config.mini_batches_per_step, 1)

    @property
    def examples_per_step(self) -> int:
        return self.config.batch_size * self.config.mini_batches_per_step

    @functools.cached_property
    def in_unit_pairs(self) -> set[frozenset[str]]:
        """This task's in-unit pairs (any other drawn pair is a translation pair), built on first use:
        only runs with a teacher count their pairs by kind (:mod:`paraxl.training.teacher_coverage`)."""
        return in_unit_keys(self.data.units)

    @property
    def files_read(self) -> list[Path]:
        """Every file that decides this task's steps: its data and, with ``distill``, the teacher's
        scores (a teacher file rewritten under the same path changes the run, so it is hashed too)."""
        teacher = [self.teacher[0].source] if self.teacher is not None else []
        return [Path(source) for source in self.data.sources] + teacher

    def layout_rng(self, seed: int, epoch: int, batch: int) -> np.random.Generator:
        """The generator that draws the texts of the step starting at ``(epoch, batch)``: a pure
        function of the position, so a resumed run draws the same texts."""
        return np.random.default_rng([seed, *self.stream, epoch, batch])

    def layout(self, seed: int, step_batches: Sequence[Batch]) -> StepLayout:
        """The texts a step on ``step_batches`` embeds and how they pair: a pure function of
        ``(seed, task, position)`` (no model), so a resumed run and a dry run draw the same."""
        epoch, index, _ = step_batches[0]
        units = self.data.units
        mini_batches = [[units[i] for i in batch] for _, _, batch in step_batches]
        return step_layout(self.needs, mini_batches, self.layout_rng(seed, epoch, index), self.translations)

    def batches(self, progress: TaskProgress) -> Iterator[Batch]:
        """``(epoch, batch, unit indices)`` from the position in ``progress`` onwards, epoch after epoch."""
        epoch, index = progress.epoch, progress.batch
        while True:
            plan = self.sampler.epoch_batches(epoch)
            if not plan:
                raise InputError("the sampler produced no batch: too few groups for the batch size")
            while index < len(plan):
                yield epoch, index, plan[index]
                index += 1
            epoch, index = epoch + 1, 0


def load_tasks(config: TrainConfig, data_dir: Path | None, *, teachers: bool = True) -> list[TrainingTask]:
    """Every task of ``config`` with its data read (``data_dir``: for the kinds that read from it);
    ``teachers`` False leaves ``distill`` scores unread (a dry run: they change no draw)."""
    multi = config.is_multi_task
    tasks = []
    for index, task in enumerate(config.task_list()):
        data = load_training_data(task.data, data_dir)
        stream = (index,) if multi else ()
        sampler = GroupBatchSampler(data.group_ids(), task.batch_size, seed=config.seed, stream=stream)
        translations = TranslationPositives.at_rate(data.units, task.data.translation_positives)
        distill = task.distill if teachers else None
        teacher = (TeacherScores.read(distill.scores), distill) if distill else None  # read once
        tasks.append(TrainingTask(index, task, data, sampler, translations, teacher, stream))
    return tasks


def schedule_for(config: TrainConfig, tasks: Sequence[TrainingTask]) -> TaskSchedule:
    # fractional steps per epoch: a task of 2.5 steps per epoch weighs 2.5, not 2
    steps = [task.sampler.batches_per_epoch() / task.config.mini_batches_per_step for task in tasks]
    return TaskSchedule.of(config.task_sampling, [task.config.weight for task in tasks], steps, config.seed)


def total_steps(config: TrainConfig, tasks: Sequence[TrainingTask]) -> int:
    """The run's length in steps: ``max_steps``, else ``epochs`` of the first task (a multi-task
    run has ``max_steps``: the config refuses epochs there)."""
    return config.max_steps or math.ceil(float(config.epochs or 1) * tasks[0].steps_per_epoch)


def next_step(
    schedule: TaskSchedule, tasks: Sequence[TrainingTask], streams: Sequence[Iterator[Batch]], step: int
) -> tuple[int, list[Batch]]:
    """Step ``step``'s task index and its mini-batches, taken from that task's batch stream."""
    chosen = schedule.task_at(step)
    return chosen, [next(streams[chosen]) for _ in range(tasks[chosen].config.mini_batches_per_step)]


def fresh_state(config: TrainConfig) -> TrainerState:
    """The state a run starts from: per-task progress for a multi-task run."""
    if not config.is_multi_task:
        return TrainerState()
    return TrainerState(tasks={task.name: TaskProgress() for task in config.task_list()})


def task_progress(state: TrainerState, tasks: Sequence[TrainingTask]) -> list[TaskProgress]:
    """Each task's progress, in task order. A one-task state keeps its position in ``state.epoch``
    / ``state.batch`` (copy back with :func:`sync_single_task`); a multi-task state's entries are
    returned themselves, so updating them updates the state."""
    if state.tasks is None:
        if len(tasks) != 1 or tasks[0].stream:
            raise ModelFormatError("the checkpoint is of a one-task run; this config has `tasks:`")
        return [TaskProgress(state.epoch, state.batch, state.step, state.examples)]
    names = [task.name for task in tasks]
    if list(state.tasks) != names or not tasks[0].stream:  # in order: task i's sampler stream is (seed, i)
        raise ModelFormatError(
            f"the checkpoint's tasks ({', '.join(state.tasks)}) are not this config's ({', '.join(names)}), "
            "in this order"
        )
    return [state.tasks[name] for name in names]


def sync_single_task(state: TrainerState, progress: Sequence[TaskProgress]) -> None:
    """A one-task run's position back into ``state`` (multi-task progress lives in the state already)."""
    if state.tasks is None:
        state.epoch, state.batch = progress[0].epoch, progress[0].batch


@dataclass
class TaskLosses:
    """Each task's losses since the last logged line: the per-task running loss of the training log."""

    losses: dict[str, list[float]] = field(default_factory=dict)

    def add(self, task: str, loss: float) -> None:
        self.losses.setdefault(task, []).append(loss)

    def flush(self) -> dict[str, dict[str, float | int]]:
        """``{task: {"loss": mean, "steps": count}}`` of the tasks trained since the last flush."""
        means = {name: {"loss": float(np.mean(values)), "steps": len(values)} for name, values in self.losses.items()}
        self.losses.clear()
        return means


def task_summary(task: TrainingTask, progress: TaskProgress, files: list[dict[str, Any]]) -> dict[str, Any]:
    """What ``summary.json`` records of one task of a multi-task run."""
    return {
        "name": task.name,
        "weight": task.config.weight,
        "steps": progress.steps,
        "examples": progress.examples,
        "epoch": progress.epoch,  # the task's sampler position at the end
        "batch": progress.batch,
        "steps_per_epoch": task.steps_per_epoch,
        "skipped_rows": task.data.skipped_rows,
        "dropped_units": task.data.dropped_units,
        "data_files": files,
    }


def describe_tasks(
    config: TrainConfig, tasks: list[TrainingTask], schedule: TaskSchedule, total_steps: int, precision: str
) -> list[str]:
    """The lines a run prints about its data before training: one for a one-task run, else one per task
    (with its share of steps under ``schedule``, the run's own)."""
    if not config.is_multi_task:
        task = tasks[0]
        batches, section = task.sampler.batches_per_epoch(), task.config
        return [
            f"training data: {task.data.summary()}; {batches} mini-batches of {section.batch_size} per epoch; "
            f"{total_steps} steps of {section.mini_batches_per_step} mini-batch(es); precision {precision}"
        ]
    lines = [f"{len(tasks)} tasks, {config.task_sampling} sampling; {total_steps} steps; {precision}"]
    for task, share in zip(tasks, schedule.probabilities, strict=True):
        section = task.config
        lines.append(
            f"task {task.name}: {task.data.summary()}; {task.sampler.batches_per_epoch()} mini-batches of "
            f"{section.batch_size} per epoch, {section.mini_batches_per_step} per step; "
            f"{section.loss.kind} loss; share of steps {share:.3f}"
        )
    return lines


def distinct_records(records: Iterator[dict[str, Any]]) -> list[dict[str, Any]]:
    """``records`` without repeats (two tasks may read one file), in order."""
    seen: list[dict[str, Any]] = []
    for record in records:
        if record not in seen:
            seen.append(record)
    return seen
