"""Decision thresholds for "paraphrase or not" from similarity scores.

A pair is predicted a paraphrase when ``score >= threshold``. The sweep visits every
distinct way of cutting the sorted scores (O(n log n), vectorised); the chosen threshold
is the midpoint between the two scores it separates, so it does not sit exactly on a
fitting example's score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from paraxl.errors import InputError

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ThresholdSweep:
    """Accuracy for each candidate threshold, ascending thresholds."""

    thresholds: FloatArray  # (c,)
    accuracy: FloatArray  # (c,)

    def best(self) -> tuple[float, float]:
        """``(threshold, accuracy)`` of the highest accuracy; ties go to the lowest threshold."""
        index = int(np.argmax(self.accuracy))
        return float(self.thresholds[index]), float(self.accuracy[index])


def check_threshold(value: float, name: str, low: float, high: float, what: str, *, low_open: bool = False) -> float:
    """``value`` if it is a finite number in the score's range; else :class:`InputError` naming the option.

    A threshold outside the range can never (or always) be met, and NaN compares false with every
    score: each would decide silently for every pair. ``low_open`` excludes ``low`` itself (a ratio
    margin threshold must be above 0). ``pi`` and ``serve`` check cosine thresholds in [-1, 1],
    ``mine`` ratio margins in (0, inf).
    """
    above_low = value > low if low_open else value >= low
    if not (math.isfinite(value) and above_low and value <= high):
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{']' if math.isfinite(high) else ')'}"
        raise InputError(f"{name} is {what} in {interval}, got {value:g}")
    return value


def check_cosine_threshold(value: float) -> float:
    """``--threshold`` of a cosine decision (``pi``, ``serve``, :class:`FixedThreshold`): in [-1, 1]."""
    return check_threshold(value, "--threshold", -1.0, 1.0, "a cosine similarity")


def _validated(scores: npt.ArrayLike, labels: npt.ArrayLike) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    score_array = np.asarray(scores, dtype=np.float64).reshape(-1)
    label_array = np.asarray(labels).reshape(-1)
    if score_array.shape != label_array.shape:
        raise ValueError(f"{score_array.size} scores but {label_array.size} labels")
    if score_array.size == 0:
        raise ValueError("no scores")
    if not np.isfinite(score_array).all():
        raise ValueError("scores must be finite")
    if not np.isin(label_array, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    return score_array, label_array.astype(bool)


def candidate_thresholds(scores: FloatArray) -> FloatArray:
    """Every distinct cut of ``scores``, ascending: below the lowest score, each midpoint between
    consecutive distinct scores, and above the highest."""
    distinct = np.unique(scores)  # ascending
    lower, upper = distinct[:-1], distinct[1:]
    # the midpoint of two neighbouring floats can round down to the lower one (0 and 5e-324), which would
    # put it on the wrong side of ``score >= cut``; the next float above it still separates the two
    middle = np.maximum((lower + upper) / 2, np.nextafter(lower, upper))
    cuts: FloatArray = np.concatenate([[distinct[0] - 1.0], middle, [distinct[-1] + 1.0]])
    return cuts


def count_at_or_above(sorted_values: FloatArray, thresholds: FloatArray) -> npt.NDArray[np.int64]:
    """How many of ``sorted_values`` (ascending) are ``>= t``, for each threshold ``t``."""
    counts: npt.NDArray[np.int64] = sorted_values.size - np.searchsorted(sorted_values, thresholds, side="left")
    return counts


def accuracy_sweep(scores: npt.ArrayLike, labels: npt.ArrayLike) -> ThresholdSweep:
    """Accuracy of ``score >= t`` for every distinct cut of the scores.

    Candidates: below the lowest score (everything positive), each midpoint between
    consecutive distinct scores, and above the highest (everything negative).
    """
    score_array, positive = _validated(scores, labels)
    thresholds = candidate_thresholds(score_array)
    positive_scores = np.sort(score_array[positive])
    negative_scores = np.sort(score_array[~positive])
    # true positives: positives with score >= t; true negatives: negatives with score < t
    true_pos = count_at_or_above(positive_scores, thresholds)
    true_neg = np.searchsorted(negative_scores, thresholds, side="left")
    accuracy = (true_pos + true_neg) / score_array.size
    return ThresholdSweep(thresholds=thresholds, accuracy=accuracy.astype(np.float64))


def best_threshold(scores: npt.ArrayLike, labels: npt.ArrayLike) -> tuple[float, float]:
    """``(threshold, accuracy)`` maximising accuracy on these scores (fit it on validation data only)."""
    return accuracy_sweep(scores, labels).best()


def accuracy_at(scores: npt.ArrayLike, labels: npt.ArrayLike, threshold: float) -> float:
    """Accuracy of ``score >= threshold``."""
    score_array, positive = _validated(scores, labels)
    return float(np.mean((score_array >= threshold) == positive))
