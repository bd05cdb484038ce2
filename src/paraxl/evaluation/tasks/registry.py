"""Every task ``paraxl eval`` knows, by name. ``default``: its data ships in the standard data dir."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from paraxl.evaluation.tasks.base import Task
from paraxl.evaluation.tasks.bitext import BuccTask, TatoebaTask
from paraxl.evaluation.tasks.classification import MtopTask, Sib200Task
from paraxl.evaluation.tasks.geometry import AlignmentUniformityTask
from paraxl.evaluation.tasks.pawsx import PawsxTask
from paraxl.evaluation.tasks.sts import StsTask, sts17_extended_task, sts22_task


@dataclass(frozen=True)
class TaskEntry:
    build: Callable[[], Task]
    default: bool = True


TASKS: dict[str, TaskEntry] = {
    "pawsx": TaskEntry(PawsxTask),
    "align": TaskEntry(AlignmentUniformityTask),
    "bucc": TaskEntry(BuccTask),
    "tatoeba": TaskEntry(TatoebaTask),
    "sts": TaskEntry(StsTask),
    "sib200": TaskEntry(Sib200Task),
    # loaders for data a user downloads themselves (not in the offline data dir)
    "sts17ext": TaskEntry(sts17_extended_task, default=False),
    "sts22": TaskEntry(sts22_task, default=False),
    "mtop": TaskEntry(MtopTask, default=False),
}
