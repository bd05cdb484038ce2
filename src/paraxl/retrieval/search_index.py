"""One interface over the four index types a vector index can search with.

    ``exact``  numpy: one matrix product + :func:`~paraxl.retrieval.topk.exact_topk` per block of queries.
    ``flat`` / ``ivf`` / ``ivfpq`` / ``hnsw``: :class:`~paraxl.retrieval.faiss_index.FaissIndex`.

Every index holds L2-normalised float32 rows, so the inner product *is* the cosine similarity; rows are
numbered 0..n-1 in insertion order (the caller maps them to ids). :func:`build_index` makes one.
"""

from __future__ import annotations

from typing import ClassVar, Protocol

import numpy as np

from paraxl.retrieval.checks import check_params
from paraxl.retrieval.faiss_index import FaissIndex
from paraxl.retrieval.topk import exact_topk

INDEX_TYPES = ("exact", "flat", "ivf", "ivfpq", "hnsw")
# exact: score at most this many floats per matrix product (64 MiB), whatever the number of queries
EXACT_BLOCK_FLOATS = 1 << 24


class SearchIndex(Protocol):
    """What a vector index needs from a search structure (rows, not ids)."""

    index_type: str

    @property
    def count(self) -> int: ...

    @property
    def params(self) -> dict[str, object]: ...

    def add(self, vectors: np.ndarray) -> None: ...

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``queries`` (q, dim) unit rows, ``1 <= k <= count`` -> scores (q, k) float32 and rows (q, k)
        int64, best first; a row of ``-1`` means "no hit" (IVF when the probed cells hold fewer than k)."""
        ...

    def set_search_params(self, params: dict[str, object]) -> None: ...

    def vectors(self) -> np.ndarray: ...


class ExactIndex:
    """Brute force in numpy: the reference every other index type is tested against."""

    index_type = "exact"
    SEARCH_PARAMS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, vectors: np.ndarray) -> None:
        self._vectors = np.ascontiguousarray(vectors, dtype=np.float32)  # (n, dim), owned

    @property
    def count(self) -> int:
        return int(self._vectors.shape[0])

    @property
    def params(self) -> dict[str, object]:
        return {}

    @property
    def stored(self) -> np.ndarray:
        """The (n, dim) float32 rows themselves, not a copy (to save them); do not write to it."""
        return self._vectors

    def add(self, vectors: np.ndarray) -> None:
        self._vectors = np.concatenate([self._vectors, vectors.astype(np.float32, copy=False)])

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Best score first; equal scores by row (insertion order)."""
        return exact_topk(queries, self._vectors, k, block_elements=EXACT_BLOCK_FLOATS)

    def set_search_params(self, params: dict[str, object]) -> None:
        check_params(self.index_type, params, self.SEARCH_PARAMS)

    def vectors(self) -> np.ndarray:
        return self._vectors.copy()


def build_index(
    index_type: str, vectors: np.ndarray, seed: int = 0, params: dict[str, object] | None = None, copy: bool = True
) -> SearchIndex:
    """A search index of type ``index_type`` (one of :data:`INDEX_TYPES`) over float32 unit rows ``vectors``.

    Args:
        index_type: ``exact``, ``flat``, ``ivf``, ``ivfpq`` or ``hnsw``.
        vectors: ``(n, dim)`` float32 unit rows.
        seed: IVF's training sample and k-means initialisation.
        params: build parameters (ivf ``nlist``, ``nprobe``; ivfpq also ``pq_m``, ``nbits``; hnsw ``M``,
            ``ef_construction``, ``ef_search``).
        copy: whether the exact index must copy ``vectors`` (the caller's array; FAISS copies anyway).
    """
    settings = {} if params is None else params
    if index_type == "exact":
        check_params("exact", settings, ())
        return ExactIndex(vectors.copy() if copy else vectors)
    return FaissIndex.build(index_type, vectors, seed, settings)
