"""paraxl.retrieval against oracles: numpy argsort, brute-force loops, a naive transliteration of LASER's
mine_bitexts.py, and the exact search for FAISS's flat index."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from paraxl.errors import InputError
from paraxl.retrieval import (
    FaissIndex,
    KnnIndexType,
    build_index,
    cosine_matrix,
    exact_topk,
    knn,
    l2_normalised,
    paired_cosine,
    ratio_margin_candidates,
    topk,
    unit_float32_rows,
    unit_rows,
)

try:
    import faiss  # noqa: F401
except ImportError:  # an optional dependency: its index type is then tested nowhere, the rest still is
    BACKENDS: tuple[KnnIndexType, ...] = ("exact",)
else:
    BACKENDS = ("exact", "flat")
needs_faiss = pytest.mark.skipif("flat" not in BACKENDS, reason="faiss-cpu is not installed")


def oracle_unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)  # the oracle works in float64 whatever the input
    normalised: np.ndarray = x / np.linalg.norm(x, axis=1, keepdims=True)
    return normalised


def brute_force_knn(queries: np.ndarray, corpus: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Full sort of every row by (-cosine, index)."""
    sims = oracle_unit_rows(queries) @ oracle_unit_rows(corpus).T
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
def test_knn_exact_and_flat_match_brute_force(monkeypatch: pytest.MonkeyPatch, k: int) -> None:
    rng = np.random.default_rng(0)
    queries, corpus = rng.normal(size=(30, 16)), rng.normal(size=(40, 16)).astype(np.float32)
    expected_sims, expected_ind = brute_force_knn(queries, corpus, k)
    for backend in (*BACKENDS, "auto"):
        sims, ind = knn(queries, corpus, k, index_type=backend)
        assert sims.shape == ind.shape == (30, k) and sims.dtype == np.float64 and ind.dtype == np.int64
        np.testing.assert_array_equal(ind, expected_ind)  # random data: no ties
        np.testing.assert_allclose(sims, expected_sims, rtol=0, atol=1e-6 if backend != "exact" else 1e-12)
    monkeypatch.setattr(topk, "row_chunk", lambda columns, block_elements: 7)  # several query blocks
    sims, ind = knn(queries, corpus, k, index_type="exact")
    np.testing.assert_array_equal(ind, expected_ind)
    np.testing.assert_allclose(sims, expected_sims, rtol=0, atol=1e-12)


def test_knn_exact_ties_go_to_the_lower_index() -> None:
    e0, e1 = [1.0, 0.0], [0.0, 1.0]
    corpus = np.array([e1, e0, e0, e0, e1, e0])
    query = np.array([e0])
    assert knn(query, corpus, 2, index_type="exact")[1].tolist() == [[1, 2]]  # tie among 1, 2, 3, 5 at the k-th place
    assert knn(query, corpus, 5, index_type="exact")[1].tolist() == [[1, 2, 3, 5, 0]]
    assert knn(query, corpus, 6, index_type="exact")[1].tolist() == [[1, 2, 3, 5, 0, 4]]


@needs_faiss
def test_knn_auto_switches_to_flat_above_the_size_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    used: list[str] = []

    def spy(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def recorded(*args: Any) -> Any:
            used.append(name)
            return real(*args)

        return recorded

    monkeypatch.setattr(topk, "_flat_topk", spy("flat", topk._flat_topk))
    monkeypatch.setattr(topk, "exact_topk", spy("exact", topk.exact_topk))
    x = np.random.default_rng(1).normal(size=(10, 4))
    knn(x, x, 2)  # 100 similarities
    monkeypatch.setattr(topk, "AUTO_FAISS_MIN_SIMILARITIES", 99)
    knn(x, x, 2)
    monkeypatch.setattr(topk, "AUTO_FAISS_MIN_SIMILARITIES", 100)  # strictly greater than
    knn(x, x, 2)
    assert used == ["exact", "flat", "exact"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: knn(np.ones((2, 3)), np.ones((4, 3)), 5), "between 1 and the corpus size 4"),
        (lambda: knn(np.ones((2, 3)), np.ones((4, 3)), 0), "between 1"),
        (lambda: knn(np.ones((2, 3)), np.ones((4, 2)), 1), "dimension"),
        (lambda: knn(np.ones((2, 3)), np.ones((4, 3)), 1, index_type="gpu"), "index_type"),  # type: ignore[arg-type]
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
    x = oracle_unit_rows(np.asarray(source, dtype=np.float64))
    y = oracle_unit_rows(np.asarray(target, dtype=np.float64))
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
        mined = ratio_margin_candidates(source, target, k=k, index_type=backend)
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
    monkeypatch.setattr(topk, "row_chunk", lambda columns, block_elements: 8)
    chunked = ratio_margin_candidates(source, target, index_type="exact")
    np.testing.assert_array_equal(chunked.source_index, mined.source_index)
    np.testing.assert_allclose(chunked.score, mined.score, atol=1e-12)


def test_ratio_margin_does_not_mutate_inputs() -> None:
    source, target, _ = planted(4, 10, 12)
    source_copy, target_copy = source.copy(), target.copy()
    for backend in BACKENDS:
        ratio_margin_candidates(source, target, index_type=backend)
    np.testing.assert_array_equal(source, source_copy)
    np.testing.assert_array_equal(target, target_copy)


def test_ratio_margin_bad_inputs() -> None:
    with pytest.raises(ValueError, match="k must be"):
        ratio_margin_candidates(np.ones((3, 2)), np.ones((3, 2)), k=0)
    with pytest.raises(ValueError, match="dimension"):
        ratio_margin_candidates(np.ones((3, 2)), np.ones((3, 4)))
    with pytest.raises(ValueError, match="neighbourhood mean"):  # every cosine is -1
        ratio_margin_candidates(np.array([[1.0, 0.0]]), np.array([[-1.0, 0.0]]))


# ---------------------------------------------------------------- normalisation and cosines


def test_unit_rows_keeps_zero_rows_and_picks_the_dtype() -> None:
    x = np.array([[3.0, 4.0], [0.0, 0.0]], dtype=np.float32)
    np.testing.assert_array_equal(unit_rows(x), [[0.6, 0.8], [0.0, 0.0]])
    assert unit_rows(x).dtype == np.float64 and unit_rows(x, dtype=None).dtype == np.float32
    np.testing.assert_array_equal(x, [[3.0, 4.0], [0.0, 0.0]])  # the input is left alone


def test_cosines_match_a_naive_loop() -> None:
    rng = np.random.default_rng(11)
    a, b = rng.normal(size=(5, 7)), rng.normal(size=(6, 7))
    naive = [[float(p @ q) / (np.linalg.norm(p) * np.linalg.norm(q)) for q in b] for p in a]
    np.testing.assert_allclose(cosine_matrix(a, b), naive, rtol=0, atol=1e-12)
    np.testing.assert_allclose(paired_cosine(a, b[:5]), [naive[i][i] for i in range(5)], rtol=0, atol=1e-12)
    assert paired_cosine(a.astype(np.float32), b[:5].astype(np.float32)).dtype == np.float32
    with pytest.raises(ValueError, match="differ in shape"):
        paired_cosine(a, b)


def test_l2_normalised_refuses_what_has_no_direction_and_never_writes_to_the_input() -> None:
    x = np.array([[3.0, 4.0], [1.0, 0.0]])
    before = x.copy()
    np.testing.assert_array_equal(l2_normalised(x, "x"), [[0.6, 0.8], [1.0, 0.0]])
    np.testing.assert_array_equal(x, before)
    with pytest.raises(ValueError, match="x row 1 is a zero vector"):
        l2_normalised(np.array([[1.0, 0.0], [0.0, 0.0]]), "x")
    with pytest.raises(ValueError, match="non-finite"):
        l2_normalised(np.array([[np.inf, 0.0]]), "x")


def test_unit_float32_rows_copies_only_when_it_must() -> None:
    unit = np.array([[0.6, 0.8], [1.0, 0.0]], dtype=np.float32)
    assert unit_float32_rows(unit) is unit  # already unit float32: used as it is
    scaled = unit_float32_rows(np.array([[3, 4]]))
    assert scaled.dtype == np.float32 and scaled.flags.c_contiguous
    np.testing.assert_allclose(scaled, [[0.6, 0.8]], rtol=1e-7)
    with pytest.raises(InputError, match="queries row 1 is all zeros"):
        unit_float32_rows(np.array([[1.0, 0.0], [0.0, 0.0]]), "queries")
    with pytest.raises(InputError, match="row 0 holds NaN"):
        unit_float32_rows(np.array([[np.nan, 0.0]]))


# ---------------------------------------------------------------- exact top-k and the index types


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("k", "block"), [(1, 1 << 22), (5, 1 << 22), (5, 37), (40, 100), (40, 1)])
def test_exact_topk_equals_a_stable_argsort(dtype: type, k: int, block: int) -> None:
    rng = np.random.default_rng(k + block)
    # small integers: every product is exact whatever the block shape, and many scores tie
    queries = rng.integers(-3, 4, size=(23, 8)).astype(dtype)
    corpus = rng.integers(-3, 4, size=(40, 8)).astype(dtype)
    corpus[7] = corpus[3]  # a duplicated row: its scores tie everywhere
    scores, indices = exact_topk(queries, corpus, k, block_elements=block)
    full = queries @ corpus.T  # (23, 40)
    expected = np.argsort(-full, axis=1, kind="stable")[:, :k]  # ties: lower index first
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_array_equal(scores, np.take_along_axis(full, expected, axis=1))
    assert scores.dtype == dtype and indices.dtype == np.int64


@needs_faiss
@pytest.mark.parametrize("k", [1, 10, 50])
def test_faiss_flat_equals_the_exact_index(k: int) -> None:
    rng = np.random.default_rng(k)
    corpus = unit_float32_rows(rng.normal(size=(300, 12)))
    queries = unit_float32_rows(rng.normal(size=(25, 12)))
    exact_scores, exact_rows = build_index("exact", corpus).search(queries, k)
    flat = build_index("flat", corpus)
    assert isinstance(flat, FaissIndex) and flat.index_type == "flat" and flat.count == 300
    flat_scores, flat_rows = flat.search(queries, k)
    np.testing.assert_array_equal(flat_rows, exact_rows)  # random data: no ties
    np.testing.assert_allclose(flat_scores, exact_scores, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(flat.vectors(), corpus)


def test_build_index_refuses_unknown_parameters() -> None:
    corpus = unit_float32_rows(np.eye(3))
    with pytest.raises(InputError, match="index type 'exact' takes no parameters; got nlist"):
        build_index("exact", corpus, params={"nlist": 2})
    with pytest.raises(InputError, match="index type 'hnsw' takes M, ef_construction, ef_search; got nprobe"):
        build_index("hnsw", corpus, params={"nprobe": 2})


def naive_ratio_margins(source: np.ndarray, target: np.ndarray, k: int) -> dict[tuple[int, int], float]:
    """Every (i, j) ratio margin by the definition, in a double loop over all pairs."""
    x, y = oracle_unit_rows(source), oracle_unit_rows(target)
    cos = [[float(x[i] @ y[j]) for j in range(len(y))] for i in range(len(x))]
    fwd = [sum(sorted(row, reverse=True)[:k]) / k for row in cos]
    bwd = [sum(sorted((cos[i][j] for i in range(len(x))), reverse=True)[:k]) / k for j in range(len(y))]
    return {(i, j): cos[i][j] / ((fwd[i] + bwd[j]) / 2) for i in range(len(x)) for j in range(len(y))}


def test_ratio_margin_scores_equal_the_double_loop_definition() -> None:
    source, target, _ = planted(21, 15, 20)
    margins = naive_ratio_margins(source, target, 4)
    for index_type in BACKENDS:
        mined = ratio_margin_candidates(source, target, k=4, index_type=index_type)
        for i, j, score in zip(mined.source_index, mined.target_index, mined.score, strict=True):
            assert score == pytest.approx(margins[(int(i), int(j))], abs=1e-6)
