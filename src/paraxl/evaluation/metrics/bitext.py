"""Bitext mining metrics (BUCC): precision / recall / F1 of mined pairs against gold, and the F1 sweep.

The candidates themselves come from ratio-margin scoring (:func:`paraxl.retrieval.ratio_margin_candidates`,
Artetxe & Schwenk 2019). The BUCC protocol then fits a margin threshold (maximising F1 against gold
pairs) on one half and applies it to the other; :func:`split_by_hash` gives a fixed half assignment
of sentence ids.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from paraxl.decision.threshold import candidate_thresholds, count_at_or_above
from paraxl.evaluation.metrics._checks import BoolArray, FloatArray, finite_vector

Pair = tuple[str, str]


def _gold_set(gold: Iterable[Pair]) -> set[Pair]:
    gold_pairs = set(gold)
    if not gold_pairs:
        raise ValueError("gold has no pairs; precision/recall are undefined")
    return gold_pairs


def precision_recall_f1(predicted: Iterable[Pair], gold: Iterable[Pair]) -> tuple[float, float, float]:
    """Precision, recall and F1 of predicted ``(source_id, target_id)`` pairs against gold pairs.

    Both are taken as sets (a repeated pair counts once). Precision of an empty prediction is 0
    (as sklearn's ``zero_division=0``); F1 is 0 when precision + recall is 0. Empty gold: ValueError.
    """
    gold_pairs = _gold_set(gold)
    predicted_pairs = set(predicted)
    correct = len(predicted_pairs & gold_pairs)
    precision = correct / len(predicted_pairs) if predicted_pairs else 0.0
    recall = correct / len(gold_pairs)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, f1


def f1_at_thresholds(
    candidate_pairs: Sequence[Pair], scores: npt.ArrayLike, gold: Iterable[Pair]
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Precision, recall and F1 of ``{candidates with score >= t}`` for every distinct cut ``t``.

    Thresholds (ascending) are those of :func:`paraxl.decision.threshold.accuracy_sweep`: below the
    lowest score (all candidates), the midpoints between consecutive distinct scores, and above the
    highest (none). Recall counts every gold pair, including those no candidate proposes. A pair
    listed more than once is predicted as soon as its highest score passes. O(c log c), vectorised
    after one pass that looks each pair up in the gold set.

    Args:
        candidate_pairs: ``(c,)`` ``(source_id, target_id)`` candidates, e.g. mined pairs mapped to ids.
        scores: ``(c,)`` their margins.
        gold: gold ``(source_id, target_id)`` pairs, at least one.

    Returns:
        ``(thresholds, precision, recall, f1)``, each ``(t,)`` float64.
    """
    score_array = finite_vector(scores, "scores")
    if len(candidate_pairs) != score_array.size:
        raise ValueError(f"{len(candidate_pairs)} candidate pairs but {score_array.size} scores")
    gold_pairs = _gold_set(gold)
    # one score per distinct pair: its maximum
    best: dict[Pair, float] = {}
    for candidate, value in zip(candidate_pairs, score_array.tolist(), strict=True):
        pair = (candidate[0], candidate[1])  # lists or other sequences become hashable tuples
        if value > best.get(pair, -np.inf):
            best[pair] = value
    unique_scores = np.fromiter(best.values(), dtype=np.float64, count=len(best))
    correct = np.fromiter((pair in gold_pairs for pair in best), dtype=bool, count=len(best))

    thresholds = candidate_thresholds(unique_scores)
    predicted = count_at_or_above(np.sort(unique_scores), thresholds)
    true_pos = count_at_or_above(np.sort(unique_scores[correct]), thresholds)
    precision = np.divide(true_pos, predicted, out=np.zeros(thresholds.size), where=predicted > 0)
    recall = true_pos / len(gold_pairs)
    # F1 = 2 TP / (predicted + gold); the denominator is >= |gold| > 0
    f1 = 2.0 * true_pos / (predicted + len(gold_pairs))
    return thresholds, precision, recall.astype(np.float64), f1


def best_f1(
    candidate_pairs: Sequence[Pair], scores: npt.ArrayLike, gold: Iterable[Pair]
) -> tuple[float, float, float, float]:
    """``(threshold, precision, recall, f1)`` at the threshold maximising F1 (fit on one half only).

    Ties go to the highest threshold: of equally good cuts, the one that mines the fewest pairs
    (and with no correct candidate at all, F1 = 0 everywhere, that is "mine nothing").
    """
    thresholds, precision, recall, f1 = f1_at_thresholds(candidate_pairs, scores, gold)
    index = f1.size - 1 - int(np.argmax(f1[::-1]))  # last maximum = highest threshold
    return float(thresholds[index]), float(precision[index]), float(recall[index]), float(f1[index])


def split_by_hash(ids: Sequence[str], salt: str = "paraxl-bucc") -> BoolArray:
    """Fixed assignment of ids to half A (``True``) or half B (``False``).

    ``id`` is in half A when the first byte of ``sha256((salt + id).encode("utf-8"))`` is below 128
    (its top bit is 0). It depends only on the salt and the id string, so it is the same in every
    process and on every platform (unlike Python's salted ``hash()``), and each id lands in A with
    probability 1/2 independently of the others.

    Args:
        ids: ``(n,)`` sentence ids.
        salt: prefix that selects one of many fixed assignments.

    Returns:
        ``(n,)`` boolean array, ``True`` for half A.
    """
    return np.fromiter(
        (hashlib.sha256((salt + identifier).encode("utf-8")).digest()[0] < 128 for identifier in ids),
        dtype=bool,
        count=len(ids),
    )
