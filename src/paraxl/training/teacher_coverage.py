"""How many of the pairs a run's steps drew its teacher file scored, per task and per kind of pair.

An unscored pair only loses its distillation term (see :mod:`paraxl.training.distillation`), so
a teacher file listed for another config or seed would change a run without a word: the run
counts, prints and records its coverage, and warns when it is low.

A drawn pair is of one of two kinds, as ``paraxl silver-pairs --pairs`` lists them: ``in-unit``
(two texts of one unit, or a text and its unit's label-0 partner) or ``translation`` (with
``data.translation_positives``, a text with another unit of its group). A file may hold one kind
on purpose (the cross-lingual silver pairs, the gold in-unit labels), so the warning looks only at
the kinds the file scored at all, and at every kind when it scored nothing.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, field
from typing import Literal

import torch

from paraxl.losses.distillation import candidate_columns
from paraxl.training.layout import StepLayout

PairKind = Literal["in-unit", "translation"]

# below this share of a kind's drawn pairs, the file was most likely listed for another config or
# seed (`paraxl silver-pairs --drawn-by` lists the right ones)
LOW_COVERAGE = 0.5

Counts = dict[PairKind, tuple[int, int]]  # kind -> (scored, drawn)


@dataclass
class TeacherCoverage:
    """The scored and drawn pairs of each task (each anchor with its positive and explicit negatives), by kind."""

    counts: dict[str, Counts] = field(default_factory=dict)  # task -> its counts

    def add(self, task: str, layout: StepLayout, targets: torch.Tensor, in_unit: Container[frozenset[str]]) -> None:
        """``targets``: the step's (n, 1 + e) teacher scores, NaN where unscored
        (:meth:`~paraxl.training.distillation.TeacherScores.targets`); ``in_unit``: the task's
        in-unit pairs (:func:`~paraxl.training.teacher_scores.in_unit_keys`)."""
        counts = self.counts.setdefault(task, {})
        columns = candidate_columns(layout).tolist()  # (n, 1 + e) text indices, -1 padding
        scored = torch.isfinite(targets).tolist()  # (n, 1 + e)
        for anchor, row, hits in zip(layout.anchors.tolist(), columns, scored, strict=True):
            for other, hit in zip(row, hits, strict=True):
                if other < 0:
                    continue
                key = frozenset((layout.texts[anchor], layout.texts[other]))
                kind: PairKind = "in-unit" if key in in_unit else "translation"
                before = counts.get(kind, (0, 0))
                counts[kind] = (before[0] + int(hit), before[1] + 1)

    def record(self) -> dict[str, dict[str, object]] | None:
        """``{task: {"scored", "drawn", "share", "kinds": {kind: {"scored", "drawn", "share"}}}}``;
        None without a teacher."""
        if not self.counts:
            return None
        return {task: {**_shares(*_total(counts)), "kinds": _by_kind(counts)} for task, counts in self.counts.items()}

    def notes(self) -> list[str]:
        """One line per task: its share of drawn pairs scored, by kind, and a warning for the low kinds."""
        lines = []
        for task, counts in self.counts.items():
            scored, drawn = _total(counts)
            where = f"task {task}: " if len(self.counts) > 1 else ""
            line = f"{where}the teacher scored {scored} of the {drawn} pairs drawn ({scored / max(drawn, 1):.1%})"
            if len(counts) > 1:
                line += " (" + ", ".join(f"{kind} {s} of {d}" for kind, (s, d) in sorted(counts.items())) + ")"
            low = _low_kinds(counts)
            if low:
                line += (
                    f"; most {' and '.join(low)} pairs got no distillation target: was the file listed for this "
                    "config and seed? (`paraxl silver-pairs --drawn-by CONFIG` lists the pairs a run draws)"
                )
            lines.append(line)
        return lines


def _total(counts: Counts) -> tuple[int, int]:
    return sum(s for s, _ in counts.values()), sum(d for _, d in counts.values())


def _shares(scored: int, drawn: int) -> dict[str, float | int]:
    return {"scored": scored, "drawn": drawn, "share": scored / drawn if drawn else 0.0}


def _by_kind(counts: Counts) -> dict[str, dict[str, float | int]]:
    return {kind: _shares(scored, drawn) for kind, (scored, drawn) in sorted(counts.items())}


def _low_kinds(counts: Counts) -> list[str]:
    """The kinds the file scored some of but under LOW_COVERAGE; every kind if it scored none."""
    if _total(counts)[0] == 0:
        return sorted(counts)
    return sorted(kind for kind, (scored, drawn) in counts.items() if 0 < scored < LOW_COVERAGE * drawn)
