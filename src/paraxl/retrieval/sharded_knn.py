"""Exact k nearest neighbours over embeddings stored as shard files, read one range at a time.

The answer is bitwise the answer of :func:`~paraxl.retrieval.topk.knn` with ``index_type="exact"`` over
the concatenated shards: rows are L2-normalised in float64 exactly as there (row by row, so a range
normalises as it would inside the whole matrix), and the similarities come from the same matrix products
(:func:`~paraxl.retrieval.topk.tiled_exact_topk`: global corpus tiles and global query blocks, whatever
the shard sizes). A query range must therefore start on a query-block boundary
(:func:`aligned_range`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from paraxl.errors import InputError
from paraxl.retrieval.checks import FloatArray, IntArray
from paraxl.retrieval.normalize import l2_normalised
from paraxl.retrieval.topk import query_block_rows, tiled_exact_topk


class ShardRows:
    """The rows of ``.npy`` shard files (each ``(rows_i, d)``, float16/32/64) as one corpus, memory-mapped.

    Only the shards a range touches are read, and only the rows in it; :meth:`unit` returns them as
    float64 unit rows (a zero or non-finite row is an :class:`InputError` naming its file and row).
    """

    def __init__(self, paths: Sequence[Path]) -> None:
        if not paths:
            raise InputError("no embedding shards to search")
        self.paths = [Path(path) for path in paths]
        self.arrays = [_open(path) for path in self.paths]
        widths = {array.shape[1] for array in self.arrays}
        if len(widths) != 1:
            raise InputError(f"shards of different widths {sorted(widths)}", self.paths[0].parent)
        self.dimension = widths.pop()
        self.starts = np.cumsum([0] + [array.shape[0] for array in self.arrays])  # (shards + 1,) first rows

    @property
    def rows(self) -> int:
        return int(self.starts[-1])

    def raw(self, start: int, stop: int) -> np.ndarray:
        """``(stop - start, d)`` rows as stored (a copy, in the shards' dtype)."""
        first = int(np.searchsorted(self.starts, start, side="right")) - 1
        pieces = []
        shard = first
        while shard < len(self.arrays) and self.starts[shard] < stop:
            low = max(start, int(self.starts[shard])) - int(self.starts[shard])
            high = min(stop, int(self.starts[shard + 1])) - int(self.starts[shard])
            pieces.append(np.asarray(self.arrays[shard][low:high]))
            shard += 1
        if not pieces:
            return np.empty((0, self.dimension), dtype=self.arrays[0].dtype)
        return np.concatenate(pieces)

    def unit(self, start: int, stop: int) -> FloatArray:
        rows = self.raw(start, stop)
        finite = np.isfinite(rows).all(axis=1)  # (rows,)
        bad = np.flatnonzero(~finite | ~rows.any(axis=1))
        if bad.size:
            return self._bad_row(start + int(bad[0]), bool(finite[bad[0]]))
        return l2_normalised(rows, "embeddings")

    def _bad_row(self, row: int, finite: bool) -> FloatArray:
        """Raise the InputError naming the shard file and the row within it of global row ``row``."""
        shard = int(np.searchsorted(self.starts, row, side="right")) - 1
        what = "a zero vector (cosine similarity is undefined for it)" if finite else "not finite (NaN or infinity)"
        raise InputError(f"row {row - int(self.starts[shard])} of this shard is {what}", self.paths[shard])


def aligned_range(
    start: int, stop: int, queries: int, corpus_rows: int, block_rows: int | None = None
) -> tuple[int, int]:
    """The query rows a task over ``start..stop-1`` searches: the blocks whose first row lies in it.

    Query blocks of ``query_block_rows(corpus_rows)`` rows start at its multiples; tasks over consecutive
    ranges that cover ``0..queries-1`` get consecutive aligned ranges that cover it too (some may be empty).
    """
    rows = block_rows or query_block_rows(corpus_rows)  # block_rows: the caller's own query block size
    return min(-(-start // rows) * rows, queries), min(-(-stop // rows) * rows, queries)


def sharded_knn(
    queries: ShardRows, start: int, stop: int, corpus: ShardRows, k: int, block_rows: int | None = None
) -> tuple[FloatArray, IntArray]:
    """The ``k`` nearest corpus rows of query rows ``start..stop-1`` (``start`` on a block boundary).

    Returns:
        ``(stop - start, k')`` float64 cosines, descending, and int64 corpus rows; ``k' = min(k, corpus rows)``.
    """
    if queries.dimension != corpus.dimension:
        raise InputError(f"queries have dimension {queries.dimension} but the corpus {corpus.dimension}")
    if start % (block_rows or query_block_rows(corpus.rows)) != 0 and start != stop:
        raise ValueError(f"query range must start on a block boundary, got {start}")
    k = min(k, corpus.rows)
    if start == stop:
        return np.empty((0, k), dtype=np.float64), np.empty((0, k), dtype=np.int64)
    return tiled_exact_topk(queries.unit(start, stop), corpus, k, block_rows)


def _open(path: Path) -> np.ndarray:
    try:
        array: np.ndarray = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise InputError(f"unreadable embedding shard ({exc})", path) from None
    if array.ndim != 2 or array.shape[1] == 0 or array.dtype.kind != "f":
        raise InputError(f"not an (rows, dim) float array: shape {array.shape}, dtype {array.dtype}", path)
    return array
