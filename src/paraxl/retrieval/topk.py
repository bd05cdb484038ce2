"""The ``k`` most similar corpus rows of each query: exact (numpy, blockwise) or FAISS's flat search.

:func:`exact_topk` is the one brute-force top-k of paraxl (the vector index's ``exact`` type, bitext
mining, Tatoeba); :func:`knn` adds cosine normalisation, input checks and the choice of an exhaustive
index type for bitext mining.
"""

from __future__ import annotations

from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

from paraxl.retrieval.checks import BLOCK_ELEMENTS, FloatArray, IntArray, row_chunk, same_dimension
from paraxl.retrieval.faiss_index import FaissIndex, faiss_available
from paraxl.retrieval.normalize import l2_normalised

# The exhaustive index types :func:`knn` searches with (its answers are the true k nearest).
KnnIndexType = Literal["auto", "exact", "flat"]
KNN_INDEX_TYPES = ("auto", "exact", "flat")

# "auto" switches to FAISS's flat search above this many query x corpus similarities: below it the exact
# numpy search takes well under a second; above it (e.g. BUCC's ~10^5 x 10^5 sentences) faiss'
# BLAS-blocked, multi-threaded flat search is much faster.
AUTO_FAISS_MIN_SIMILARITIES = 50_000_000

# Corpus rows per tile of :func:`tiled_exact_topk`, the exact search of corpora larger than this. Global
# tiles (rows [t * CORPUS_TILE, (t + 1) * CORPUS_TILE)) and global query blocks make the search's matrix
# products the same calls whether the corpus is in memory or read shard by shard: BLAS gives bitwise
# different dot products for different matrix shapes (OpenBLAS: gemv for one row, small-matrix kernels),
# so equal calls are what makes the sharded search (:mod:`paraxl.retrieval.sharded_knn`) exact.
CORPUS_TILE = 1 << 16


class UnitRows(Protocol):
    """Rows of a corpus as float64 unit vectors, read a range at a time (in memory, or from shard files)."""

    @property
    def rows(self) -> int: ...

    def unit(self, start: int, stop: int) -> FloatArray:
        """``(stop - start, d)`` float64 unit rows ``start..stop-1``."""
        ...


class InMemoryRows:
    """:class:`UnitRows` over an ``(m, d)`` array of unit rows already in memory."""

    def __init__(self, points: FloatArray) -> None:
        self.points = points

    @property
    def rows(self) -> int:
        return int(self.points.shape[0])

    def unit(self, start: int, stop: int) -> FloatArray:
        return self.points[start:stop]


def query_block_rows(corpus_rows: int) -> int:
    """Query rows per block of the exact search against ``corpus_rows`` rows (the same in every path)."""
    return row_chunk(min(corpus_rows, CORPUS_TILE))


def exact_topk(
    queries: np.ndarray, corpus: np.ndarray, k: int, block_elements: int = BLOCK_ELEMENTS
) -> tuple[np.ndarray, IntArray]:
    """The ``k`` largest inner products of each query with the corpus rows, largest first.

    Computed in the inputs' dtype, in query blocks of about ``block_elements`` similarities. Top-k by
    ``argpartition``; equal similarities are ordered by the lower corpus index, also at the k-th place
    (a row whose k-th value is tied is re-sorted with a stable full sort). Rows are not normalised here:
    pass unit rows for cosines.

    Args:
        queries: ``(n, d)`` query vectors.
        corpus: ``(m, d)`` corpus vectors.
        k: neighbours per query, ``1 <= k <= m`` (not checked).
        block_elements: similarities per block; the block's row count is ``block_elements // m``.

    Returns:
        ``(scores, indices)``: ``(n, k)`` similarities (inputs' dtype) and ``(n, k)`` int64 corpus rows.
    """
    n, m = queries.shape[0], corpus.shape[0]
    all_scores, all_indices = [], []
    rows = row_chunk(m, block_elements)
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        block = queries[start:stop] @ corpus.T  # (b, m)
        if k < m:
            top = np.argpartition(-block, k - 1, axis=1)[:, :k]  # the k largest, in no particular order
            kth = np.take_along_axis(block, top, axis=1).min(axis=1)  # (b,)
            # argpartition picks arbitrarily among values tied with the k-th largest; where a row has
            # more than k values >= its k-th, redo that row with a stable sort (lower index first).
            tied = np.count_nonzero(block >= kth[:, None], axis=1) > k
            if tied.any():
                top[tied] = np.argsort(-block[tied], axis=1, kind="stable")[:, :k]
        else:
            top = np.broadcast_to(np.arange(m), (stop - start, m)).copy()
        values = np.take_along_axis(block, top, axis=1)  # (b, k)
        # order the k by similarity descending, then by corpus index ascending (lexsort: last key is primary)
        order = np.lexsort((top, -values), axis=1)
        all_scores.append(np.take_along_axis(values, order, axis=1))
        all_indices.append(np.take_along_axis(top, order, axis=1).astype(np.int64, copy=False))
    return np.concatenate(all_scores), np.concatenate(all_indices)


def tiled_exact_topk(
    queries: FloatArray, corpus: UnitRows, k: int, block_rows: int | None = None
) -> tuple[FloatArray, IntArray]:
    """:func:`exact_topk` of unit ``queries`` over ``corpus`` read one tile of :data:`CORPUS_TILE` rows at a time.

    ``queries`` must start at a global query row that is a multiple of ``query_block_rows(corpus.rows)``
    (the caller's rows ``[a, b)`` of a larger query set): then every matrix product is the call that the
    same search over all queries makes, bit for bit. Per tile the ``min(k, tile)`` best (ties to the lower
    index), merged by similarity descending, then corpus index ascending: the same answer as one
    :func:`exact_topk` over the whole corpus when the products are equal.

    Returns:
        ``(n, k)`` float64 similarities and ``(n, k)`` int64 corpus rows, ``1 <= k <= corpus.rows``.
    """
    n, m = queries.shape[0], corpus.rows
    rows = block_rows or query_block_rows(m)  # block_rows: another block size (tests: many small tasks)
    best_sim = np.empty((n, 0), dtype=np.float64)
    best_ind = np.empty((n, 0), dtype=np.int64)
    for tile_start in range(0, m, CORPUS_TILE):
        tile = corpus.unit(tile_start, min(tile_start + CORPUS_TILE, m))  # (t, d)
        tile_k = min(k, tile.shape[0])
        parts = [
            # one product per query block: (b, d) @ (d, t), exactly as exact_topk blocks it
            exact_topk(queries[start : start + rows], tile, tile_k, block_elements=rows * tile.shape[0])
            for start in range(0, n, rows)
        ]
        sims = np.concatenate([best_sim, np.concatenate([part[0] for part in parts])], axis=1)  # (n, k + tile_k)
        inds = np.concatenate([best_ind, np.concatenate([part[1] for part in parts]) + tile_start], axis=1)
        order = np.lexsort((inds, -sims), axis=1)[:, :k]  # similarity descending, then index ascending
        best_sim = np.take_along_axis(sims, order, axis=1)
        best_ind = np.take_along_axis(inds, order, axis=1)
    return best_sim, best_ind


def knn(
    queries: npt.ArrayLike, corpus: npt.ArrayLike, k: int, index_type: KnnIndexType = "auto"
) -> tuple[FloatArray, IntArray]:
    """The ``k`` most cosine-similar corpus rows of each query, most similar first.

    Inputs are L2-normalised here, so inner product = cosine.

    Index types:
        ``"exact"``: :func:`exact_topk` in float64 (ties to the lower corpus index); above
        :data:`CORPUS_TILE` corpus rows, tile by tile (:func:`tiled_exact_topk`).
        ``"flat"``: ``faiss.IndexFlatIP`` (exact inner-product search in float32); the order of exactly
        tied similarities is faiss' own.
        ``"auto"``: flat when ``len(queries) * len(corpus) > 50_000_000`` and faiss is importable,
        otherwise exact.

    Args:
        queries: ``(n, d)`` query embeddings.
        corpus: ``(m, d)`` corpus embeddings.
        k: neighbours per query, ``1 <= k <= m``.

    Returns:
        ``(similarities, indices)``: ``(n, k)`` float64 cosines, descending along each row, and the
        ``(n, k)`` int64 corpus rows they belong to.

    Raises:
        ValueError: bad shapes, non-finite or zero rows, ``k`` out of range, unknown index type.
    """
    query_points = l2_normalised(queries, "queries")
    corpus_points = l2_normalised(corpus, "corpus")
    return unit_knn(query_points, corpus_points, k, index_type)


def unit_knn(
    query_points: FloatArray, corpus_points: FloatArray, k: int, index_type: KnnIndexType = "auto"
) -> tuple[FloatArray, IntArray]:
    """:func:`knn` of rows already L2-normalised in float64 (not normalised again: a second division
    would move the last bit of some rows, and the sharded search normalises once)."""
    same_dimension(query_points, corpus_points, ("queries", "corpus"))
    m = corpus_points.shape[0]
    if not 1 <= k <= m:
        raise ValueError(f"k must be between 1 and the corpus size {m}, got {k}")
    if index_type not in KNN_INDEX_TYPES:
        raise ValueError(f"index_type must be 'auto', 'exact' or 'flat', got {index_type!r}")
    if index_type == "flat" or (
        index_type == "auto" and query_points.shape[0] * m > AUTO_FAISS_MIN_SIMILARITIES and faiss_available()
    ):
        return _flat_topk(query_points, corpus_points, k)
    if m > CORPUS_TILE:  # tiles: the same products as the sharded search (bitwise equal results)
        return tiled_exact_topk(query_points, InMemoryRows(corpus_points), k)
    similarities, indices = exact_topk(query_points, corpus_points, k)
    return similarities.astype(np.float64, copy=False), indices


def _flat_topk(queries: FloatArray, corpus: FloatArray, k: int) -> tuple[FloatArray, IntArray]:
    """FAISS's exhaustive inner-product search over float32 copies; cosines back as float64."""
    index = FaissIndex.build("flat", np.ascontiguousarray(corpus, dtype=np.float32), seed=0, params={})
    similarities, indices = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    return similarities.astype(np.float64), indices
