"""FAISS inner-product indexes of three types behind one class: ``flat``, ``ivf`` and ``hnsw``.

    ``flat``   ``faiss.IndexFlatIP``: exhaustive search, in FAISS's blocked SIMD/BLAS kernels.
    ``ivf``    ``faiss.IndexIVFFlat`` (inner product): k-means cells, searches ``nprobe`` of ``nlist``.
    ``hnsw``   ``faiss.IndexHNSWFlat`` (inner product): a navigable small-world graph, ``M`` links per node.

Rows must be L2-normalised float32, so the inner product is the cosine. FAISS is imported lazily:
this module imports (and the exact search works) without it.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from paraxl.errors import InputError
from paraxl.retrieval.checks import check_params, positive_int
from paraxl.retrieval.normalize import checked_unit_rows

FAISS_INDEX_TYPES = ("flat", "ivf", "hnsw")

# IVF: FAISS's k-means wants >= 39 training points per centroid (it warns below that), so nlist is
# capped at n // 39; 4·sqrt(n) is the usual rule of thumb (FAISS wiki: 4·sqrt(n) to 16·sqrt(n)).
IVF_MIN_POINTS_PER_LIST = 39
# Training sample: FAISS itself subsamples to 256 points per centroid; 64 gave the same recall on real
# e5-small embeddings (280k: 0.834 vs 0.840 at nprobe 16, 0.897 vs 0.899 at 32) at half the build time.
IVF_TRAIN_POINTS_PER_LIST = 64
# nprobe 32 of ~4·sqrt(n) cells: recall@10 ~0.90 on those embeddings (16: 0.83, 64: 0.94), < 1 ms a query
IVF_DEFAULT_NPROBE = 32
# HNSW: M=32 links per node and efConstruction=80; on the same embeddings efSearch 64 gives recall@10
# 0.97 (32: 0.95, 128: 0.98); efSearch trades latency for recall at query time.
HNSW_DEFAULT_M = 32
HNSW_DEFAULT_EF_CONSTRUCTION = 80
HNSW_DEFAULT_EF_SEARCH = 64


def faiss_module() -> Any:
    """``import faiss`` with a paraxl error (not a traceback) when it is missing."""
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - faiss-cpu is a dependency
        raise InputError(f"the FAISS index types need faiss-cpu ({exc}); use the exact index type") from None
    return faiss


def faiss_available() -> bool:
    """Whether ``import faiss`` works."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def default_nlist(count: int) -> int:
    """round(4·sqrt(n)), capped so every list gets >= 39 training points; at least 1."""
    return max(1, min(round(4 * math.sqrt(count)), count // IVF_MIN_POINTS_PER_LIST))


def faiss_class(index_type: str) -> Any:
    """The FAISS class that stores an index of type ``index_type``."""
    faiss = faiss_module()
    return {"flat": faiss.IndexFlatIP, "ivf": faiss.IndexIVFFlat, "hnsw": faiss.IndexHNSWFlat}[index_type]


class FaissIndex:
    """``flat`` / ``ivf`` / ``hnsw``: a FAISS inner-product index; FAISS's labels are the row numbers."""

    BUILD_PARAMS: ClassVar[dict[str, tuple[str, ...]]] = {
        "flat": (),
        "ivf": ("nlist", "nprobe"),
        "hnsw": ("M", "ef_construction", "ef_search"),
    }
    SEARCH_PARAMS: ClassVar[dict[str, tuple[str, ...]]] = {"flat": (), "ivf": ("nprobe",), "hnsw": ("ef_search",)}

    def __init__(self, index_type: str, index: Any, params: dict[str, object]) -> None:
        self.index_type = index_type
        self._index = index
        self._params = dict(params)
        self._apply_search_params()

    @classmethod
    def build(cls, index_type: str, vectors: np.ndarray, seed: int, params: dict[str, object]) -> FaissIndex:
        """A new index of type ``index_type`` over ``vectors`` (n, dim) float32 unit rows; IVF is trained here."""
        faiss = faiss_module()
        check_params(index_type, params, cls.BUILD_PARAMS[index_type])
        dimension = vectors.shape[1]
        settled: dict[str, object]
        if index_type == "flat":
            index, settled = faiss.IndexFlatIP(dimension), {}
        elif index_type == "ivf":
            index, settled = _new_ivf(faiss, vectors, seed, params)
        else:
            m = positive_int("M", params.get("M", HNSW_DEFAULT_M), minimum=2)
            index = faiss.IndexHNSWFlat(dimension, m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = positive_int(
                "ef_construction", params.get("ef_construction", HNSW_DEFAULT_EF_CONSTRUCTION)
            )
            ef_search = positive_int("ef_search", params.get("ef_search", HNSW_DEFAULT_EF_SEARCH))
            settled = {"M": m, "ef_construction": int(index.hnsw.efConstruction), "ef_search": ef_search}
        index.add(vectors)
        return cls(index_type, index, settled)

    @classmethod
    def wrap(cls, index_type: str, index: Any, params: dict[str, object]) -> FaissIndex:
        """An existing FAISS index (e.g. read from disk) with its recorded parameters, checked."""
        check_params(index_type, params, (*cls.BUILD_PARAMS[index_type], "train_size"))
        for key in cls.SEARCH_PARAMS[index_type]:
            params[key] = positive_int(key, params.get(key))
        return cls(index_type, index, params)

    @property
    def raw(self) -> Any:
        """The FAISS index itself (to write it in FAISS's own format)."""
        return self._index

    @property
    def count(self) -> int:
        return int(self._index.ntotal)

    @property
    def params(self) -> dict[str, object]:
        return dict(self._params)

    def _apply_search_params(self) -> None:
        if self.index_type == "ivf":
            self._index.nprobe = int(self._params["nprobe"])  # type: ignore[call-overload]
        elif self.index_type == "hnsw":
            self._index.hnsw.efSearch = int(self._params["ef_search"])  # type: ignore[call-overload]

    def set_search_params(self, params: dict[str, object]) -> None:
        """Query-time knobs: ivf ``nprobe``, hnsw ``ef_search``."""
        check_params(self.index_type, params, self.SEARCH_PARAMS[self.index_type])
        for key, value in params.items():
            self._params[key] = positive_int(key, value)
        if self.index_type == "ivf":
            self._params["nprobe"] = min(int(self._index.nlist), int(self._params["nprobe"]))  # type: ignore[call-overload]
        self._apply_search_params()

    def add(self, vectors: np.ndarray) -> None:
        """Append (n, dim) float32 unit rows; IVF assigns them to its existing cells (no retraining)."""
        self._index.add(vectors)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``queries`` (q, dim) float32 unit rows -> scores (q, k) float32 and rows (q, k) int64, best
        first; a row of ``-1`` means "no hit" (IVF when the probed cells hold fewer than k)."""
        scores, rows = self._index.search(queries, k)
        return scores, rows.astype(np.int64, copy=False)

    def check_stored_rows(self) -> None:
        """Refuse (:class:`InputError`, naming the row) a stored row that is not a finite unit vector.

        Reads FAISS's own float arrays in place (no reconstruction, no copy): flat's and hnsw's
        storage as one (n, dim) array, ivf's list by list with the row numbers it keeps per list.
        """
        faiss = faiss_module()
        count, dimension = self.count, int(self._index.d)
        if count == 0:
            return
        if self.index_type != "ivf":
            flat = self._index if self.index_type == "flat" else faiss.downcast_index(self._index.storage)
            checked_unit_rows(faiss.rev_swig_ptr(flat.get_xb(), count * dimension).reshape(count, dimension))
            return
        lists = faiss.extract_index_ivf(self._index).invlists
        for cell in range(int(lists.nlist)):
            size = int(lists.list_size(cell))
            if size:
                codes = faiss.rev_swig_ptr(lists.get_codes(cell), size * int(lists.code_size))
                rows = faiss.rev_swig_ptr(lists.get_ids(cell), size)
                checked_unit_rows(codes.view(np.float32).reshape(size, dimension), rows)

    def vectors(self) -> np.ndarray:
        """The stored rows, reconstructed (exactly: all three types keep uncompressed vectors)."""
        if self.index_type != "ivf":
            return np.asarray(self._index.reconstruct_n(0, self.count), dtype=np.float32)
        faiss = faiss_module()
        self._index.make_direct_map()  # IVF stores rows by cell; the map finds row i
        try:
            return np.asarray(self._index.reconstruct_n(0, self.count), dtype=np.float32)
        finally:
            self._index.set_direct_map_type(faiss.DirectMap.NoMap)


def _new_ivf(faiss: Any, vectors: np.ndarray, seed: int, params: dict[str, object]) -> tuple[Any, dict[str, object]]:
    """A trained, empty ``IndexIVFFlat`` over ``vectors`` (n, dim) and the parameters it settled on."""
    count, dimension = vectors.shape
    nlist = positive_int("nlist", params.get("nlist", default_nlist(count)))
    if nlist > count:
        raise InputError(f"ivf needs at least nlist={nlist} vectors to train on, got {count}")
    # probing more cells than exist is probing all of them (FAISS clamps too; record what is done)
    nprobe = min(nlist, positive_int("nprobe", params.get("nprobe", IVF_DEFAULT_NPROBE)))
    quantizer = faiss.IndexFlatIP(dimension)
    index = faiss.IndexIVFFlat(quantizer, dimension, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = seed  # k-means initialisation
    sample = min(count, nlist * IVF_TRAIN_POINTS_PER_LIST)
    rows = np.sort(np.random.default_rng(seed).choice(count, size=sample, replace=False))
    index.train(vectors[rows])
    return index, {"nlist": nlist, "nprobe": nprobe, "train_size": sample}
