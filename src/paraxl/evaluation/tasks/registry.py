"""Every task ``paraxl eval`` knows, by name. ``default``: part of ``all`` (its data ships in the
standard data dir and it is not a subset of another task). ``TaskEntry.build(protocol)`` makes the
task; the PAWS-X protocol reaches only the tasks that read PAWS-X (``pawsx``, ``align``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from paraxl.evaluation.loaders.tatoeba import TATOEBA_XTREME36
from paraxl.evaluation.tasks.base import PawsxProtocol, Task
from paraxl.evaluation.tasks.bitext import BuccTask, TatoebaTask
from paraxl.evaluation.tasks.classification import MtopTask, Sib200Task
from paraxl.evaluation.tasks.geometry import AlignmentUniformityTask
from paraxl.evaluation.tasks.pawsx import PawsxTask
from paraxl.evaluation.tasks.sts import StsTask, sts17_extended_task, sts22_task


@dataclass(frozen=True)
class TaskEntry:
    factory: Callable[..., Task]
    default: bool = True
    reads_pawsx: bool = False  # the factory takes ``protocol=``

    def build(self, protocol: PawsxProtocol = "resplit") -> Task:
        """The task, reading PAWS-X under ``protocol`` where it reads PAWS-X at all."""
        return self.factory(protocol=protocol) if self.reads_pawsx else self.factory()


TASKS: dict[str, TaskEntry] = {
    "pawsx": TaskEntry(PawsxTask, reads_pawsx=True),
    "align": TaskEntry(AlignmentUniformityTask, reads_pawsx=True),
    "bucc": TaskEntry(BuccTask),
    "tatoeba": TaskEntry(TatoebaTask),
    # the XTREME 36 languages only: a third of the text, for runs that cannot afford all 112
    "tatoeba36": TaskEntry(lambda: TatoebaTask(TATOEBA_XTREME36, name="tatoeba36"), default=False),
    "sts": TaskEntry(StsTask),
    "sib200": TaskEntry(Sib200Task),
    # loaders for data a user downloads themselves (not in the offline data dir)
    "sts17ext": TaskEntry(sts17_extended_task, default=False),
    "sts22": TaskEntry(sts22_task, default=False),
    "mtop": TaskEntry(MtopTask, default=False),
}
