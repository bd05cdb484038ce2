"""Pair classification ("paraphrase or not") scores from similarity scores and 0/1 labels.

A pair is predicted positive (a paraphrase) when ``score >= threshold``, the same rule as
:mod:`paraxl.decision.threshold`. Precision, recall and F1 are those of the positive class
(``sklearn.metrics.precision_recall_fscore_support`` semantics, ``zero_division=0``); average
precision (AP) ranks pairs by their raw scores and does not use the threshold
(``sklearn.metrics.average_precision_score``: AP = sum_n (R_n - R_{n-1}) P_n over the ranked
scores, as in MTEB's PairClassification task).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sklearn.metrics import accuracy_score, average_precision_score, f1_score, precision_score, recall_score

from paraxl.decision.threshold import candidate_thresholds, count_at_or_above
from paraxl.evaluation.metrics._checks import BoolArray, FloatArray, binary_labels, finite_vector


@dataclass(frozen=True)
class PairClassificationScores:
    """Scores of ``score >= threshold`` against the labels; all in ``[0, 1]``."""

    accuracy: float
    f1: float
    precision: float
    recall: float
    average_precision: float
    threshold: float


def _validated(scores: npt.ArrayLike, labels: npt.ArrayLike) -> tuple[FloatArray, BoolArray]:
    score_array = finite_vector(scores, "scores")
    positive = binary_labels(labels, score_array.size)
    # AP (and recall) are undefined without a positive pair; refuse rather than return sklearn's warning + 0.
    if not positive.any():
        raise ValueError("labels contain no positive (1) pair; precision/recall/AP are undefined")
    return score_array, positive


def pair_classification_scores(
    scores: npt.ArrayLike, labels: npt.ArrayLike, threshold: float
) -> PairClassificationScores:
    """Accuracy, F1, precision and recall of ``score >= threshold``, and AP of the raw scores.

    Args:
        scores: ``(n,)`` similarity of each pair (higher = more likely a paraphrase).
        labels: ``(n,)`` 1 for a paraphrase, 0 otherwise; at least one 1.
        threshold: decision threshold, typically fitted on validation data
            (:func:`best_f1_threshold` or :func:`paraxl.decision.threshold.best_threshold`).
    """
    if not np.isfinite(threshold):
        raise ValueError(f"threshold must be finite, got {threshold}")
    score_array, positive = _validated(scores, labels)
    predicted = score_array >= threshold
    return PairClassificationScores(
        accuracy=float(accuracy_score(positive, predicted)),
        f1=float(f1_score(positive, predicted, zero_division=0)),
        precision=float(precision_score(positive, predicted, zero_division=0)),
        recall=float(recall_score(positive, predicted, zero_division=0)),
        average_precision=float(average_precision_score(positive, score_array)),
        threshold=float(threshold),
    )


def best_f1_threshold(scores: npt.ArrayLike, labels: npt.ArrayLike) -> tuple[float, float]:
    """``(threshold, f1)`` maximising the F1 of ``score >= threshold`` on these scores.

    Vectorised over the same candidates as :func:`paraxl.decision.threshold.accuracy_sweep`:
    below the lowest score (everything positive), each midpoint between consecutive distinct
    scores, and above the highest (everything negative); O(n log n). Ties go to the lowest
    threshold, the rule ``threshold.py`` uses for accuracy, so both fitted thresholds behave alike.

    Args:
        scores: ``(n,)`` similarity of each pair.
        labels: ``(n,)`` 0/1 labels with at least one 1.
    """
    score_array, positive = _validated(scores, labels)
    thresholds = candidate_thresholds(score_array)
    positive_scores = np.sort(score_array[positive])
    predicted = count_at_or_above(np.sort(score_array), thresholds)
    true_pos = count_at_or_above(positive_scores, thresholds)
    # F1 = 2 TP / (2 TP + FP + FN) = 2 TP / (predicted positives + actual positives); the
    # denominator is >= the (non-zero) number of positives, so it never divides by zero.
    f1 = 2.0 * true_pos / (predicted + positive_scores.size)
    index = int(np.argmax(f1))  # first maximum = lowest threshold
    return float(thresholds[index]), float(f1[index])
