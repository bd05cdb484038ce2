"""One reader per task: its JSON ``scores`` layout -> the typed :class:`TaskScores` record.

This module is the one place that knows which key of a task's result JSON holds which
number; everything downstream reads attributes. A reader takes the ``scores`` mapping and
the document's ``main_score`` and tolerates missing parts (an experiment record keeps only
the top two levels of a task's scores, see :mod:`paraxl.experiments.records`), so a number
that is absent is simply absent from the record. Adding a task: one reader here (or reuse
one) and one line in :data:`READERS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from paraxl.evaluation.scores import TaskScores, number, numbers

Reader = Callable[[Mapping[str, Any], float | None], TaskScores]


def _mapping(node: Any) -> Mapping[str, Any]:
    return node if isinstance(node, Mapping) else {}


def _column(rows: Any, key: str) -> dict[str, float]:
    """``{name: rows[name][key]}`` for the rows that hold a number at ``key``."""
    return numbers({name: _mapping(row).get(key) for name, row in _mapping(rows).items()})


def _scalars(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON scalars (numbers, strings, booleans, null) among ``mapping``'s top-level entries."""
    return {key: value for key, value in mapping.items() if value is None or isinstance(value, int | float | str)}


def pawsx_scores(scores: Mapping[str, Any], main_score: float | None) -> TaskScores:
    """PAWS-X: accuracy at the pooled threshold per language; cross-lingual cells ``"s1-s2"`` as subsets."""
    cross = _mapping(scores.get("cross_lingual"))
    extras: dict[str, Any] = {
        "protocol": scores.get("protocol"),
        "validation_accuracy": scores.get("pooled_fit_accuracy"),
        "threshold": scores.get("pooled_threshold"),
        **{f"mean_{key}": value for key, value in _scalars(_mapping(scores.get("mean"))).items() if key != "accuracy"},
    }
    if cross:
        own = _mapping(cross.get("en_to_xx_own_threshold"))  # threshold fitted on the en->X fit cells
        extras |= {
            "cross_lingual_threshold": cross.get("threshold"),
            "cross_lingual_accuracy": cross.get("mean_cross_lingual"),  # every off-diagonal cell
            "en_to_xx_own_threshold_accuracy": own.get("mean") if own else None,
        }
        if "mean_en_to_xx" in cross:  # English among the languages
            extras |= {"en_to_xx_accuracy": cross["mean_en_to_xx"], "xx_to_en_accuracy": cross.get("mean_xx_to_en")}
    cells = {
        f"{first}-{second}": value
        for first, row in _mapping(cross.get("accuracy")).items()
        for second, value in _mapping(row).items()
    }
    return TaskScores(main_score, _column(scores.get("monolingual"), "accuracy"), numbers(cells), extras)


def align_scores(scores: Mapping[str, Any], main_score: float | None) -> TaskScores:
    """Alignment/uniformity: paraphrase alignment per language; mean uniformity among the extras."""
    means = _mapping(scores.get("mean"))
    extras = {"protocol": scores.get("protocol"), **_scalars(means)}
    return TaskScores(main_score, _column(scores.get("per_language"), "alignment_paraphrase"), {}, extras)


def bucc_scores(scores: Mapping[str, Any], main_score: float | None) -> TaskScores:
    """BUCC: held-out F1 per language pair."""
    per_pair = _mapping(scores.get("per_pair"))
    return TaskScores(main_score, {}, _column(per_pair, "f1"), {"split": scores.get("split")})


def tatoeba_scores(scores: Mapping[str, Any], main_score: float | None) -> TaskScores:
    """Tatoeba: accuracy (both directions) per language; the means over all and XTREME-36 as extras."""
    return TaskScores(main_score, _column(scores.get("per_language"), "accuracy"), {}, _scalars(scores))


def sts_scores(scores: Mapping[str, Any], main_score: float | None) -> TaskScores:
    """STS: mean Spearman x100 per group (``sts``) or Spearman per set (a task over one folder of files)."""
    groups = {
        name: _mapping(block).get("mean_spearman") for name, block in scores.items() if isinstance(block, Mapping)
    }
    subsets = numbers(groups) or _column(scores.get("sets"), "spearman")
    return TaskScores(main_score, {}, subsets, {})


def classification_scores(scores: Mapping[str, Any], main_score: float | None) -> TaskScores:
    """SIB-200 / MTOP: in-language accuracy (%) per language; means of every setting as extras."""
    extras = {"source_language": scores.get("source_language"), **_scalars(_mapping(scores.get("mean")))}
    return TaskScores(main_score, _column(scores.get("per_language"), "in_language_accuracy"), {}, extras)


def headline_only(scores: Mapping[str, Any], main_score: float | None) -> TaskScores:
    """A task without a reader of its own (e.g. one removed since its results were written)."""
    return TaskScores(main_score)


READERS: dict[str, Reader] = {
    "pawsx": pawsx_scores,
    "align": align_scores,
    "bucc": bucc_scores,
    "tatoeba": tatoeba_scores,
    "tatoeba36": tatoeba_scores,
    "sts": sts_scores,
    "sts17ext": sts_scores,
    "sts22": sts_scores,
    "sib200": classification_scores,
    "mtop": classification_scores,
}


def read_scores(task: str, scores: Mapping[str, Any], main_score: Any) -> TaskScores:
    """The typed record of task ``task``'s JSON ``scores`` (headline only for a task with no reader)."""
    return READERS.get(task, headline_only)(_mapping(scores), number(main_score))
