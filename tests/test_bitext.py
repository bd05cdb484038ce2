"""Bitext mining metrics (precision / recall / F1 sweeps, the hash split) against explicit sets.

The mining itself (knn, ratio margin) is tested in ``test_retrieval.py``."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest

from paraxl.evaluation.metrics.bitext import (
    best_f1,
    f1_at_thresholds,
    precision_recall_f1,
    split_by_hash,
)

# ---------------------------------------------------------------- precision / recall / F1


def test_precision_recall_f1_known_values() -> None:
    gold = {("s1", "t1"), ("s2", "t2"), ("s3", "t3"), ("s4", "t4")}
    assert precision_recall_f1([("s1", "t1"), ("s2", "t9"), ("s1", "t1")], gold) == pytest.approx((0.5, 0.25, 1 / 3))
    assert precision_recall_f1(set(), gold) == (0.0, 0.0, 0.0)
    assert precision_recall_f1(gold, gold) == (1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="gold has no pairs"):
        precision_recall_f1(gold, [])


def explicit_sweep(
    pairs: list[tuple[str, str]], scores: list[float], gold: set[tuple[str, str]], cut: float
) -> tuple[float, float, float]:
    predicted = {pair for pair, value in zip(pairs, scores, strict=True) if value >= cut}
    correct = predicted & gold
    precision = len(correct) / len(predicted) if predicted else 0.0
    recall = len(correct) / len(gold)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def test_f1_sweep_matches_explicit_sets() -> None:
    rng = np.random.default_rng(5)
    pairs = [(f"s{i}", f"t{rng.integers(0, 30)}") for i in range(60)]
    pairs += pairs[:5]  # repeated pairs: predicted once their best score passes
    scores = rng.choice([0.9, 1.0, 1.05, 1.1, 1.2], size=65).tolist()  # many ties
    scores[60:] = [value + 0.3 for value in scores[:5]]
    gold = {pair for pair in pairs[:60] if rng.random() < 0.5} | {("s999", "t999")}  # one gold pair never proposed
    thresholds, precision, recall, f1 = f1_at_thresholds(pairs, scores, gold)
    assert np.all(np.diff(thresholds) > 0)
    assert thresholds[0] < min(scores) and thresholds[-1] > max(scores)
    for index, cut in enumerate(thresholds):
        expected = explicit_sweep(pairs, scores, gold, float(cut))
        assert (precision[index], recall[index], f1[index]) == pytest.approx(expected)
    every_score = [*scores, math.inf]
    best_expected = max(explicit_sweep(pairs, scores, gold, cut)[2] for cut in every_score)
    threshold, p, r, best = best_f1(pairs, np.array(scores), gold)
    assert best == pytest.approx(best_expected)
    assert (p, r, best) == pytest.approx(explicit_sweep(pairs, scores, gold, threshold))


def test_best_f1_ties_go_to_the_highest_threshold() -> None:
    pairs = [("a", "x"), ("b", "y"), ("c", "z"), ("d", "w")]
    gold = {("a", "x"), ("d", "w")}
    # all four: F1 = 2*2/(4+2); only the top one: F1 = 2*1/(1+2): equal
    threshold, precision, recall, f1 = best_f1(pairs, [0.1, 0.2, 0.3, 0.4], gold)
    assert f1 == pytest.approx(2 / 3)
    assert threshold == pytest.approx(0.35)
    assert (precision, recall) == (1.0, 0.5)
    # no correct candidate: F1 is 0 everywhere; the highest threshold mines nothing
    assert best_f1(pairs, [0.1, 0.2, 0.3, 0.4], {("q", "q")})[0] > 0.4


def test_f1_sweep_bad_inputs() -> None:
    with pytest.raises(ValueError, match="2 candidate pairs but 1 scores"):
        f1_at_thresholds([("a", "b"), ("c", "d")], [1.0], {("a", "b")})
    with pytest.raises(ValueError, match="gold has no pairs"):
        f1_at_thresholds([("a", "b")], [1.0], set())
    with pytest.raises(ValueError, match="non-finite"):
        f1_at_thresholds([("a", "b")], [np.inf], {("a", "b")})
    with pytest.raises(ValueError, match="empty"):
        best_f1([], [], {("a", "b")})


# ---------------------------------------------------------------- split


def test_split_by_hash_is_fixed() -> None:
    ids = ["fr-000001", "fr-000002", "en-000001", "en-123456", "de-000042", "zh-999999", "ru-000007", "", "é"]
    # computed once with hashlib; these must never change (result files depend on the halves)
    assert split_by_hash(ids).tolist() == [True, True, False, True, True, True, False, True, False]
    assert split_by_hash(ids, salt="other").tolist() == [True, True, False, True, False, False, True, False, True]
    # an independent expression of the rule: first hex digit of the digest is 0-7
    independent = [hashlib.sha256(f"paraxl-bucc{i}".encode()).hexdigest()[0] in "01234567" for i in ids]
    assert split_by_hash(ids).tolist() == independent
    assert split_by_hash([]).shape == (0,)


def test_split_by_hash_is_roughly_half() -> None:
    halves = split_by_hash([f"en-{i:06d}" for i in range(10_000)])
    assert halves.dtype == np.bool_
    assert 0.48 < halves.mean() < 0.52
