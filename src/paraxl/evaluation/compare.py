"""Two results of one task, compared number by number at the precision the summary reports them.

"Identical" means what a reader of ``summary.md`` or RESULTS.md would see: the same printed digits
(percent with 2 decimals for accuracies and F1, 2 decimals for Spearman x100 and classification
accuracy, 3 for alignment/uniformity; see :func:`paraxl.evaluation.report.headline_text`). The
absolute difference is kept beside it, since two numbers either side of a rounding edge print
differently while differing by far less than the last digit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from paraxl.evaluation.results import ResultDocument

_PERCENT_TYPES = ("pair_classification", "bitext_mining", "retrieval")


@dataclass(frozen=True)
class ScoreComparison:
    task: str
    name: str  # "main", "per_language/de", "per_subset/en-de"
    reference: float | None
    candidate: float | None
    reference_text: str
    candidate_text: str

    @property
    def identical(self) -> bool:
        """The same printed digits (both missing counts as the same)."""
        return self.reference_text == self.candidate_text

    @property
    def difference(self) -> float | None:
        """``|candidate - reference|`` in the task's own units (fractions for accuracies); None if one is missing."""
        if self.reference is None or self.candidate is None:
            return None
        return abs(self.candidate - self.reference)


def reported_text(task_type: str, value: float | None) -> str:
    """``value`` as the summary prints a score of this task type."""
    if value is None or not math.isfinite(value):
        return "–"
    if task_type in _PERCENT_TYPES:
        return f"{100 * value:.2f}"
    return f"{value:.{3 if task_type == 'geometry' else 2}f}"


def compare_results(reference: ResultDocument, candidate: ResultDocument) -> list[ScoreComparison]:
    """The main score, then every per-language and per-subset score of ``reference``, against ``candidate``.

    A number the candidate lacks is compared as missing (never identical to a present one).
    """
    task_type = reference.task.task_type
    name = reference.task.name
    pairs: list[tuple[str, float | None, float | None]] = [("main", reference.main_score, candidate.main_score)]
    for group in ("per_language", "per_subset"):
        got = getattr(candidate.scores, group)
        for key, value in getattr(reference.scores, group).items():
            pairs.append((f"{group}/{key}", value, got.get(key)))
    return [
        ScoreComparison(name, label, ref, cand, reported_text(task_type, ref), reported_text(task_type, cand))
        for label, ref, cand in pairs
    ]
