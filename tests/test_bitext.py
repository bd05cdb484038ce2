"""Bitext mining against a naive transliteration of LASER's mine_bitexts.py, brute-force knn and explicit sets."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from paraxl.evaluation.metrics import bitext
from paraxl.evaluation.metrics.bitext import (
    Backend,
    best_f1,
    f1_at_thresholds,
    knn,
    precision_recall_f1,
    ratio_margin_candidates,
    split_by_hash,
)

try:
    import faiss  # noqa: F401
except ImportError:  # an optional dependency: its backend is then tested nowhere, the rest still is
    BACKENDS: tuple[Backend, ...] = ("exact",)
else:
    BACKENDS = ("exact", "faiss")
needs_faiss = pytest.mark.skipif("faiss" not in BACKENDS, reason="faiss-cpu is not installed")


def unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)  # the oracle works in float64 whatever the input
    normalised: np.ndarray = x / np.linalg.norm(x, axis=1, keepdims=True)
    return normalised


def brute_force_knn(queries: np.ndarray, corpus: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Full sort of every row by (-cosine, index)."""
    sims = unit_rows(queries) @ unit_rows(corpus).T
    rows: list[list[int]] = []
    for row in sims.tolist():
        order = sorted((-value, j) for j, value in enumerate(row))
        rows.append([j for _, j in order[:k]])
    indices = np.array(rows)
    return np.take_along_axis(sims, indices, axis=1), indices


def planted(seed: int, n: int, m: int, dim: int = 24, noise: float = 0.5) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Sources, and targets in which source i's translation sits at row plant[i]; the other rows are unrelated."""
    rng = np.random.default_rng(seed)
    # a shared offset makes every cosine positive, as for real sentence embeddings (anisotropic),
    # so the ratio margin's neighbourhood means are positive even when k covers the whole corpus
    offset = np.full(dim, 0.6)
    source = offset + rng.normal(size=(n, dim))
    target = offset + rng.normal(size=(m, dim))
    plant = rng.permutation(m)[:n].tolist()
    target[plant] = source + rng.normal(scale=noise, size=source.shape)
    return source, target.astype(np.float32), plant


# ---------------------------------------------------------------- knn


@pytest.mark.parametrize("k", [1, 3, 17, 40])
def test_knn_exact_and_faiss_match_brute_force(monkeypatch: pytest.MonkeyPatch, k: int) -> None:
    rng = np.random.default_rng(0)
    queries, corpus = rng.normal(size=(30, 16)), rng.normal(size=(40, 16)).astype(np.float32)
    expected_sims, expected_ind = brute_force_knn(queries, corpus, k)
    for backend in (*BACKENDS, "auto"):
        sims, ind = knn(queries, corpus, k, backend=backend)
        assert sims.shape == ind.shape == (30, k) and sims.dtype == np.float64 and ind.dtype == np.int64
        np.testing.assert_array_equal(ind, expected_ind)  # random data: no ties
        np.testing.assert_allclose(sims, expected_sims, rtol=0, atol=1e-6 if backend != "exact" else 1e-12)
    monkeypatch.setattr(bitext, "row_chunk", lambda columns: 7)  # several query blocks
    sims, ind = knn(queries, corpus, k, backend="exact")
    np.testing.assert_array_equal(ind, expected_ind)
    np.testing.assert_allclose(sims, expected_sims, rtol=0, atol=1e-12)


def test_knn_exact_ties_go_to_the_lower_index() -> None:
    e0, e1 = [1.0, 0.0], [0.0, 1.0]
    corpus = np.array([e1, e0, e0, e0, e1, e0])
    query = np.array([e0])
    assert knn(query, corpus, 2, backend="exact")[1].tolist() == [[1, 2]]  # tie among 1, 2, 3, 5 at the k-th place
    assert knn(query, corpus, 5, backend="exact")[1].tolist() == [[1, 2, 3, 5, 0]]
    assert knn(query, corpus, 6, backend="exact")[1].tolist() == [[1, 2, 3, 5, 0, 4]]


@needs_faiss
def test_knn_auto_switches_to_faiss_above_the_size_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    used: list[str] = []

    def spy(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def recorded(*args: Any) -> Any:
            used.append(name)
            return real(*args)

        return recorded

    monkeypatch.setattr(bitext, "_knn_faiss", spy("faiss", bitext._knn_faiss))
    monkeypatch.setattr(bitext, "_knn_exact", spy("exact", bitext._knn_exact))
    x = np.random.default_rng(1).normal(size=(10, 4))
    knn(x, x, 2)  # 100 similarities
    monkeypatch.setattr(bitext, "AUTO_FAISS_MIN_SIMILARITIES", 99)
    knn(x, x, 2)
    monkeypatch.setattr(bitext, "AUTO_FAISS_MIN_SIMILARITIES", 100)  # strictly greater than
    knn(x, x, 2)
    assert used == ["exact", "faiss", "exact"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: knn(np.ones((2, 3)), np.ones((4, 3)), 5), "between 1 and the corpus size 4"),
        (lambda: knn(np.ones((2, 3)), np.ones((4, 3)), 0), "between 1"),
        (lambda: knn(np.ones((2, 3)), np.ones((4, 2)), 1), "dimension"),
        (lambda: knn(np.ones((2, 3)), np.ones((4, 3)), 1, backend="gpu"), "backend"),  # type: ignore[arg-type]
        (lambda: knn(np.ones((0, 3)), np.ones((4, 3)), 1), "empty"),
        (lambda: knn(np.full((2, 3), np.nan), np.ones((4, 3)), 1), "non-finite"),
    ],
)
def test_knn_bad_inputs(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]


# ---------------------------------------------------------------- ratio margin mining


def naive_laser_mine(source: np.ndarray, target: np.ndarray, k: int) -> list[tuple[int, int, float]]:
    """LASER mine_bitexts.py --mode mine --retrieval max --margin ratio, written with loops."""
    x, y = unit_rows(np.asarray(source, dtype=np.float64)), unit_rows(np.asarray(target, dtype=np.float64))
    x2y_sim, x2y_ind = brute_force_knn(x, y, min(k, len(y)))
    y2x_sim, y2x_ind = brute_force_knn(y, x, min(k, len(x)))
    x2y_mean, y2x_mean = x2y_sim.mean(axis=1), y2x_sim.mean(axis=1)

    def score(a: np.ndarray, b: np.ndarray, fwd_mean: float, bwd_mean: float) -> float:
        return float(a @ b) / ((fwd_mean + bwd_mean) / 2)

    fwd_scores = [[score(x[i], y[j], x2y_mean[i], y2x_mean[j]) for j in x2y_ind[i]] for i in range(len(x))]
    bwd_scores = [[score(y[j], x[i], y2x_mean[j], x2y_mean[i]) for i in y2x_ind[j]] for j in range(len(y))]
    proposals = []
    for i, row in enumerate(fwd_scores):
        best = row.index(max(row))  # first maximum, as numpy's argmax
        proposals.append((i, int(x2y_ind[i][best]), row[best]))
    for j, row in enumerate(bwd_scores):
        best = row.index(max(row))
        proposals.append((int(y2x_ind[j][best]), j, row[best]))
    mined, seen_src, seen_trg = [], set(), set()
    for src, trg, value in sorted(proposals, key=lambda p: -p[2]):  # Python's sort is stable
        if src not in seen_src and trg not in seen_trg:
            seen_src.add(src)
            seen_trg.add(trg)
            mined.append((src, trg, value))
    return mined


@pytest.mark.parametrize(("n", "m", "k"), [(60, 80, 4), (80, 60, 4), (50, 50, 1), (5, 3, 4)])
def test_ratio_margin_matches_naive_laser(n: int, m: int, k: int) -> None:
    if n <= m:
        source, target, _ = planted(n + m + k, n, m)
    else:  # more sources than targets: plant the other way round
        target, source, _ = planted(n + m + k, m, n)
    expected = naive_laser_mine(source, target, k)
    for backend in BACKENDS:
        mined = ratio_margin_candidates(source, target, k=k, backend=backend)
        pairs = list(zip(mined.source_index.tolist(), mined.target_index.tolist(), strict=True))
        if k > 1:
            assert pairs == [(src, trg) for src, trg, _ in expected]
            np.testing.assert_allclose(mined.score, [value for _, _, value in expected], rtol=0, atol=1e-6)
        else:
            # k = 1: every mutual nearest pair scores cos / cos = 1, so their order is decided by
            # rounding; the mined pairs and their scores still agree.
            assert dict(zip(pairs, mined.score.tolist(), strict=True)) == pytest.approx(
                {(src, trg): value for src, trg, value in expected}, abs=1e-6
            )
        assert mined.score.dtype == np.float64 and mined.source_index.dtype == np.int64
        assert len(mined) == len(expected) <= min(n, m)
        assert np.all(np.diff(mined.score) <= 0)


def test_ratio_margin_finds_planted_translations_and_chunks_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    source, target, plant = planted(3, 60, 90, noise=0.3)
    mined = ratio_margin_candidates(source, target)
    found = set(zip(mined.source_index.tolist(), mined.target_index.tolist(), strict=True))
    planted_pairs = set(enumerate(plant))
    assert len(found & planted_pairs) >= 55  # nearly all translations are recovered ...
    top = list(zip(mined.source_index[:50].tolist(), mined.target_index[:50].tolist(), strict=True))
    assert set(top) <= planted_pairs  # ... and they carry the highest margins
    monkeypatch.setattr(bitext, "row_chunk", lambda columns: 8)
    chunked = ratio_margin_candidates(source, target, backend="exact")
    np.testing.assert_array_equal(chunked.source_index, mined.source_index)
    np.testing.assert_allclose(chunked.score, mined.score, atol=1e-12)


def test_ratio_margin_does_not_mutate_inputs() -> None:
    source, target, _ = planted(4, 10, 12)
    source_copy, target_copy = source.copy(), target.copy()
    for backend in BACKENDS:
        ratio_margin_candidates(source, target, backend=backend)
    np.testing.assert_array_equal(source, source_copy)
    np.testing.assert_array_equal(target, target_copy)


def test_ratio_margin_bad_inputs() -> None:
    with pytest.raises(ValueError, match="k must be"):
        ratio_margin_candidates(np.ones((3, 2)), np.ones((3, 2)), k=0)
    with pytest.raises(ValueError, match="dimension"):
        ratio_margin_candidates(np.ones((3, 2)), np.ones((3, 4)))
    with pytest.raises(ValueError, match="neighbourhood mean"):  # every cosine is -1
        ratio_margin_candidates(np.array([[1.0, 0.0]]), np.array([[-1.0, 0.0]]))


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
