"""The typed score record every task's result reduces to: a headline, per-language and per-subset numbers.

Readers of results (the report, plots, experiment tables, benchmarks) go through this record
instead of each task's JSON layout: ``record.headline``, ``record.per_language["de"]``,
``record.per_subset["sts17"]``, ``record.extras["validation_accuracy"]``. Which JSON keys fill
it is decided once per task in :mod:`paraxl.evaluation.readers`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from paraxl.errors import InputError


@dataclass(frozen=True)
class TaskScores:
    """One task's numbers, typed.

    Attributes:
        headline: the task's main score (``TaskSpec.main_score`` says what it is); None if undefined.
        per_language: the headline metric per language (PAWS-X accuracy, Tatoeba accuracy, ...).
        per_subset: the headline metric per subset that is not one language: BUCC pairs, STS
            groups or sets, PAWS-X cross-lingual cells ``"en-de"``, Tatoeba language groups.
        extras: other named scalars (validation accuracy, fitted threshold, means of secondary
            metrics, protocol); JSON scalars only.
    """

    headline: float | None
    per_language: Mapping[str, float] = field(default_factory=dict)
    per_subset: Mapping[str, float] = field(default_factory=dict)
    extras: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "headline": self.headline,
            "per_language": dict(self.per_language),
            "per_subset": dict(self.per_subset),
            "extras": dict(self.extras),
        }

    @classmethod
    def from_json(cls, node: Any) -> TaskScores:
        """The record as :meth:`to_json` wrote it; a malformed one is an :class:`InputError`."""
        if not isinstance(node, Mapping) or "headline" not in node:
            raise InputError("a score record needs a mapping with `headline`")
        return cls(
            headline=number(node["headline"]),
            per_language=numbers(node.get("per_language") or {}),
            per_subset=numbers(node.get("per_subset") or {}),
            extras=dict(node.get("extras") or {}),
        )


def number(value: Any) -> float | None:
    """``value`` as a float, or None when it is not a number (missing, null, a string, a mapping)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def numbers(mapping: Any) -> dict[str, float]:
    """The numeric entries of ``mapping`` as floats, in order; other entries are left out."""
    if not isinstance(mapping, Mapping):
        return {}
    found = {str(key): number(value) for key, value in mapping.items()}
    return {key: value for key, value in found.items() if value is not None}
