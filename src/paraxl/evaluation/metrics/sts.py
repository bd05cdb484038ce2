"""Semantic textual similarity: correlation of predicted similarities with gold ratings, x100.

Reference: Reimers & Gurevych (2019), "Sentence-BERT", and MTEB's STS tasks, which report the
Spearman rank correlation (the main score) and the Pearson correlation of cosine similarities
with the gold scores, multiplied by 100. Computed with ``scipy.stats``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import stats

from paraxl.evaluation.metrics._checks import FloatArray, finite_vector


def _validated(predicted: npt.ArrayLike, gold: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    predicted_array = finite_vector(predicted, "predicted")
    gold_array = finite_vector(gold, "gold")
    if predicted_array.size != gold_array.size:
        raise ValueError(f"{predicted_array.size} predicted scores but {gold_array.size} gold scores")
    if predicted_array.size < 2:
        raise ValueError("a correlation needs at least 2 pairs")
    # A constant vector has zero variance: the correlation is undefined (scipy warns and returns NaN).
    for name, array in (("predicted", predicted_array), ("gold", gold_array)):
        if np.all(array == array[0]):
            raise ValueError(f"{name} scores are constant; the correlation is undefined")
    return predicted_array, gold_array


def spearman_x100(predicted: npt.ArrayLike, gold: npt.ArrayLike) -> float:
    """100 x Spearman's rank correlation of ``predicted`` (n,) with ``gold`` (n,); ties get average ranks."""
    predicted_array, gold_array = _validated(predicted, gold)
    return 100.0 * float(stats.spearmanr(predicted_array, gold_array).statistic)


def pearson_x100(predicted: npt.ArrayLike, gold: npt.ArrayLike) -> float:
    """100 x Pearson's linear correlation of ``predicted`` (n,) with ``gold`` (n,)."""
    predicted_array, gold_array = _validated(predicted, gold)
    return 100.0 * float(stats.pearsonr(predicted_array, gold_array).statistic)
