"""FAISS inner-product indexes of four types behind one class: ``flat``, ``ivf``, ``ivfpq`` and ``hnsw``.

    ``flat``   ``faiss.IndexFlatIP``: exhaustive search, in FAISS's blocked SIMD/BLAS kernels.
    ``ivf``    ``faiss.IndexIVFFlat`` (inner product): k-means cells, searches ``nprobe`` of ``nlist``.
    ``ivfpq``  ``faiss.IndexIVFPQ`` (inner product): the same cells, each vector's residual kept as a
               ``pq_m``-byte product-quantizer code (``nbits`` 8): ~pq_m + 8 bytes a vector, not 4·dim.
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

FAISS_INDEX_TYPES = ("flat", "ivf", "ivfpq", "hnsw")
IVF_TYPES = ("ivf", "ivfpq")  # trained cells, searched ``nprobe`` at a time

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
# IVF-PQ: 8-bit codes (256 centroids per sub-quantizer, FAISS's fast path) and dim/8 sub-quantizers by
# default (384-d: 48 bytes a code, 1/32 of the float32 vector); PQ's k-means wants >= 39 points per
# centroid too, so the training sample is at least 39·256 rows where the corpus has them.
PQ_DEFAULT_NBITS = 8
PQ_DIMENSIONS_PER_CODE_BYTE = 8
ID_BYTES = 8  # FAISS keeps an int64 id beside each code in its inverted lists


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
    classes = {
        "flat": faiss.IndexFlatIP,
        "ivf": faiss.IndexIVFFlat,
        "ivfpq": faiss.IndexIVFPQ,
        "hnsw": faiss.IndexHNSWFlat,
    }
    return classes[index_type]


def default_pq_m(dimension: int) -> int:
    """The largest divisor of ``dimension`` that is at most dim/8 (384-d: 48 one-byte codes), at least 1."""
    target = max(1, dimension // PQ_DIMENSIONS_PER_CODE_BYTE)
    return next(m for m in range(target, 0, -1) if dimension % m == 0)


def plan_index(index_type: str, count: int, dimension: int, params: dict[str, object]) -> dict[str, object]:
    """The parameters an index of ``count`` rows of width ``dimension`` settles on: ``params`` checked,
    defaults filled in, and for the IVF types the training sample's size ``train_size``. No FAISS call."""
    check_params(index_type, params, FaissIndex.BUILD_PARAMS[index_type])
    if index_type == "flat":
        return {}
    if index_type == "hnsw":
        return {
            "M": positive_int("M", params.get("M", HNSW_DEFAULT_M), minimum=2),
            "ef_construction": positive_int(
                "ef_construction", params.get("ef_construction", HNSW_DEFAULT_EF_CONSTRUCTION)
            ),
            "ef_search": positive_int("ef_search", params.get("ef_search", HNSW_DEFAULT_EF_SEARCH)),
        }
    nlist = positive_int("nlist", params.get("nlist", default_nlist(count)))
    if nlist > count:
        raise InputError(f"{index_type} needs at least nlist={nlist} vectors to train on, got {count}")
    # probing more cells than exist is probing all of them (FAISS clamps too; record what is done)
    settled: dict[str, object] = {
        "nlist": nlist,
        "nprobe": min(nlist, positive_int("nprobe", params.get("nprobe", IVF_DEFAULT_NPROBE))),
    }
    sample = nlist * IVF_TRAIN_POINTS_PER_LIST
    if index_type == "ivfpq":
        pq_m = positive_int("pq_m", params.get("pq_m", default_pq_m(dimension)))
        if dimension % pq_m:
            raise InputError(
                f"index parameter pq_m={pq_m} must divide the dimension {dimension} (try {default_pq_m(dimension)})"
            )
        nbits = positive_int("nbits", params.get("nbits", PQ_DEFAULT_NBITS))
        if nbits > 16:
            raise InputError(f"index parameter nbits must be at most 16, got {nbits}")
        if count < 2**nbits:
            raise InputError(
                f"ivfpq with nbits={nbits} needs at least {2**nbits} vectors to train its codes, got {count}"
            )
        sample = max(sample, IVF_MIN_POINTS_PER_LIST * 2**nbits)
        settled |= {"pq_m": pq_m, "nbits": nbits}
    settled["train_size"] = min(count, sample)
    return settled


def training_rows(count: int, size: int, seed: int) -> np.ndarray:
    """The sorted (size,) row numbers of an IVF training sample of ``count`` rows: the same rows whether
    the corpus is one array or read shard by shard, so both builds train the same cells."""
    rows: np.ndarray = np.sort(np.random.default_rng(seed).choice(count, size=size, replace=False))
    return rows


def new_index(
    index_type: str, dimension: int, settled: dict[str, object], seed: int, sample: np.ndarray | None = None
) -> Any:
    """An empty FAISS index of ``index_type`` with :func:`plan_index`'s parameters ``settled``; the IVF
    types are trained here on ``sample`` (train_size, dim) float32 unit rows, k-means seeded with ``seed``."""
    faiss = faiss_module()
    if index_type == "flat":
        return faiss.IndexFlatIP(dimension)
    if index_type == "hnsw":
        index = faiss.IndexHNSWFlat(dimension, int(settled["M"]), faiss.METRIC_INNER_PRODUCT)  # type: ignore[call-overload]
        index.hnsw.efConstruction = int(settled["ef_construction"])  # type: ignore[call-overload]
        return index
    assert sample is not None, "the IVF types are trained"
    quantizer = faiss.IndexFlatIP(dimension)
    nlist = int(settled["nlist"])  # type: ignore[call-overload]
    if index_type == "ivf":
        index = faiss.IndexIVFFlat(quantizer, dimension, nlist, faiss.METRIC_INNER_PRODUCT)
    else:
        pq_m, nbits = int(settled["pq_m"]), int(settled["nbits"])  # type: ignore[call-overload]
        index = faiss.IndexIVFPQ(quantizer, dimension, nlist, pq_m, nbits, faiss.METRIC_INNER_PRODUCT)
        index.pq.cp.seed = seed  # the sub-quantizers' k-means (FAISS's default seed is a constant)
    index.cp.seed = seed  # the cells' k-means initialisation
    index.train(sample)
    return index


class FaissIndex:
    """``flat`` / ``ivf`` / ``ivfpq`` / ``hnsw``: a FAISS inner-product index; its labels are the row numbers."""

    BUILD_PARAMS: ClassVar[dict[str, tuple[str, ...]]] = {
        "flat": (),
        "ivf": ("nlist", "nprobe"),
        "ivfpq": ("nlist", "nprobe", "pq_m", "nbits"),
        "hnsw": ("M", "ef_construction", "ef_search"),
    }
    SEARCH_PARAMS: ClassVar[dict[str, tuple[str, ...]]] = {
        "flat": (),
        "ivf": ("nprobe",),
        "ivfpq": ("nprobe",),
        "hnsw": ("ef_search",),
    }

    def __init__(self, index_type: str, index: Any, params: dict[str, object]) -> None:
        self.index_type = index_type
        self._index = index
        self._params = dict(params)
        if index_type == "ivfpq":  # derived from the index, recorded in index.json for the reader
            self._params["bytes_per_vector"] = self.bytes_per_vector
        self._apply_search_params()

    @classmethod
    def build(cls, index_type: str, vectors: np.ndarray, seed: int, params: dict[str, object]) -> FaissIndex:
        """A new index of type ``index_type`` over ``vectors`` (n, dim) float32 unit rows; IVF is trained here."""
        count, dimension = vectors.shape
        settled = plan_index(index_type, count, dimension, params)
        sample = None
        if index_type in IVF_TYPES:
            sample = vectors[training_rows(count, int(settled["train_size"]), seed)]  # type: ignore[call-overload]
        index = new_index(index_type, dimension, settled, seed, sample)
        index.add(vectors)
        return cls(index_type, index, settled)

    @classmethod
    def wrap(cls, index_type: str, index: Any, params: dict[str, object]) -> FaissIndex:
        """An existing FAISS index (e.g. read from disk) with its recorded parameters, checked."""
        derived = ("train_size", "bytes_per_vector") if index_type == "ivfpq" else ("train_size",)
        check_params(index_type, params, (*cls.BUILD_PARAMS[index_type], *derived))
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

    @property
    def bytes_per_vector(self) -> int:
        """Memory a stored vector takes: its code (float32 row, or PQ code) plus, in IVF lists, its int64 id
        (HNSW's links, ~2·M·4 bytes, are not counted)."""
        if self.index_type in IVF_TYPES:
            return int(self._index.code_size) + ID_BYTES
        return 4 * int(self._index.d)

    def _apply_search_params(self) -> None:
        if self.index_type in IVF_TYPES:
            self._index.nprobe = int(self._params["nprobe"])  # type: ignore[call-overload]
        elif self.index_type == "hnsw":
            self._index.hnsw.efSearch = int(self._params["ef_search"])  # type: ignore[call-overload]

    def set_search_params(self, params: dict[str, object]) -> None:
        """Query-time knobs: ivf / ivfpq ``nprobe``, hnsw ``ef_search``."""
        check_params(self.index_type, params, self.SEARCH_PARAMS[self.index_type])
        for key, value in params.items():
            self._params[key] = positive_int(key, value)
        if self.index_type in IVF_TYPES:
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
        ivfpq keeps byte codes, not rows: its centroids and codebooks must be finite.
        """
        faiss = faiss_module()
        count, dimension = self.count, int(self._index.d)
        if self.index_type == "ivfpq":
            _check_pq_tables(faiss, self._index)
            return
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
        """The stored rows, reconstructed (exactly: flat, ivf and hnsw keep uncompressed vectors).

        Raises:
            InputError: ivfpq, which keeps lossy codes (a rebuild from them would lose precision twice).
        """
        if self.index_type == "ivfpq":
            raise InputError(
                "an ivfpq index keeps compressed codes, not the vectors: build it again from the corpus "
                "(paraxl index build) or from its embeddings (paraxl index build-sharded)"
            )
        if self.index_type != "ivf":
            return np.asarray(self._index.reconstruct_n(0, self.count), dtype=np.float32)
        faiss = faiss_module()
        self._index.make_direct_map()  # IVF stores rows by cell; the map finds row i
        try:
            return np.asarray(self._index.reconstruct_n(0, self.count), dtype=np.float32)
        finally:
            self._index.set_direct_map_type(faiss.DirectMap.NoMap)


def _check_pq_tables(faiss: Any, index: Any) -> None:
    """Refuse an IVF-PQ index whose cell centroids or PQ codebooks hold NaN or infinity (a damaged file)."""
    quantizer = faiss.downcast_index(index.quantizer)
    centroids = faiss.rev_swig_ptr(quantizer.get_xb(), int(quantizer.ntotal) * int(index.d))
    codebooks = faiss.vector_to_array(index.pq.centroids)
    if not (np.isfinite(centroids).all() and np.isfinite(codebooks).all()):
        raise InputError("the IVF-PQ centroids or codebooks hold NaN or infinity (the file was damaged or altered)")
