"""The search structures behind :class:`paraxl.serving.index.VectorIndex`.

Every backend holds L2-normalised float32 rows, so the inner product *is* the cosine similarity;
:class:`VectorIndex` normalises on the way in and maps rows (0..n-1, in insertion order) to ids.

    ``exact``  numpy: one matrix product + ``np.argpartition`` per block of queries; no FAISS.
    ``flat``   ``faiss.IndexFlatIP``: the same exhaustive search, in FAISS's blocked SIMD/BLAS kernels.
    ``ivf``    ``faiss.IndexIVFFlat`` (inner product): k-means cells, searches ``nprobe`` of ``nlist``.
    ``hnsw``   ``faiss.IndexHNSWFlat`` (inner product): a navigable small-world graph, ``M`` links per node.

FAISS is imported lazily, so the exact backend works (and this module imports) without it.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from paraxl.errors import InputError

FAISS_BACKENDS = ("flat", "ivf", "hnsw")
VECTORS_FILE = "vectors.npy"
FAISS_FILE = "index.faiss"

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
# exact: score at most this many floats per matrix product (64 MiB), whatever the number of queries
_EXACT_BLOCK_FLOATS = 1 << 24


class SearchBackend(Protocol):
    """What :class:`VectorIndex` needs from a search structure (rows, not ids)."""

    name: str

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

    def save(self, folder: Path) -> None: ...


def faiss_module() -> Any:
    """``import faiss`` with a paraxl error (not a traceback) when it is missing."""
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - faiss-cpu is a dependency
        raise InputError(f"the FAISS index types need faiss-cpu ({exc}); use the exact index type") from None
    return faiss


def _positive_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or int(value) < minimum:
        raise InputError(f"index parameter {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_params(backend: str, params: dict[str, object], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        takes = ", ".join(allowed) if allowed else "no parameters"
        raise InputError(f"index type {backend!r} takes {takes}; got {', '.join(unknown)}")


def default_nlist(count: int) -> int:
    """round(4·sqrt(n)), capped so every list gets >= 39 training points; at least 1."""
    return max(1, min(round(4 * math.sqrt(count)), count // IVF_MIN_POINTS_PER_LIST))


class ExactBackend:
    """Brute force in numpy: the reference every other backend is tested against."""

    name = "exact"
    SEARCH_PARAMS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, vectors: np.ndarray) -> None:
        self._vectors = np.ascontiguousarray(vectors, dtype=np.float32)  # (n, dim), owned

    @property
    def count(self) -> int:
        return int(self._vectors.shape[0])

    @property
    def params(self) -> dict[str, object]:
        return {}

    def add(self, vectors: np.ndarray) -> None:
        self._vectors = np.concatenate([self._vectors, vectors.astype(np.float32, copy=False)])

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        count = self.count
        block = max(1, _EXACT_BLOCK_FLOATS // max(count, 1))
        all_scores, all_rows = [], []
        for start in range(0, queries.shape[0], block):
            scores = queries[start : start + block] @ self._vectors.T  # (b, n) cosines
            if k < count:
                rows = np.argpartition(-scores, k - 1, axis=1)[:, :k]  # the k best, unordered
            else:
                rows = np.broadcast_to(np.arange(count), scores.shape)
            top = np.take_along_axis(scores, rows, axis=1)
            order = np.lexsort((rows, -top), axis=1)  # best score first, ties by row (insertion order)
            all_rows.append(np.take_along_axis(rows, order, axis=1).astype(np.int64))
            all_scores.append(np.take_along_axis(top, order, axis=1))
        return np.concatenate(all_scores), np.concatenate(all_rows)

    def set_search_params(self, params: dict[str, object]) -> None:
        check_params(self.name, params, self.SEARCH_PARAMS)

    def vectors(self) -> np.ndarray:
        return self._vectors.copy()

    def save(self, folder: Path) -> None:
        with (folder / VECTORS_FILE).open("wb") as handle:
            np.save(handle, self._vectors, allow_pickle=False)

    @classmethod
    def load(cls, folder: Path, dimension: int) -> ExactBackend:
        path = folder / VECTORS_FILE
        try:
            vectors = np.load(path, allow_pickle=False)  # never unpickle: object arrays raise
        except FileNotFoundError:
            raise InputError("missing index file", path) from None
        except (ValueError, OSError, EOFError) as exc:
            raise InputError(f"not a readable .npy matrix ({exc})", path) from None
        if vectors.dtype != np.float32 or vectors.ndim != 2 or vectors.shape[1] != dimension:
            raise InputError(f"expected a float32 (n, {dimension}) matrix, found {vectors.dtype} {vectors.shape}", path)
        return cls(vectors)


class FaissBackend:
    """``flat`` / ``ivf`` / ``hnsw``: a FAISS inner-product index; FAISS's labels are our row numbers."""

    BUILD_PARAMS: ClassVar[dict[str, tuple[str, ...]]] = {
        "flat": (),
        "ivf": ("nlist", "nprobe"),
        "hnsw": ("M", "ef_construction", "ef_search"),
    }
    SEARCH_PARAMS: ClassVar[dict[str, tuple[str, ...]]] = {"flat": (), "ivf": ("nprobe",), "hnsw": ("ef_search",)}

    def __init__(self, name: str, index: Any, params: dict[str, object]) -> None:
        self.name = name
        self._index = index
        self._params = dict(params)
        self._apply_search_params()

    @classmethod
    def build(cls, name: str, vectors: np.ndarray, seed: int, params: dict[str, object]) -> FaissBackend:
        """A new index of type ``name`` over ``vectors`` (n, dim) unit rows; IVF is trained here."""
        faiss = faiss_module()
        check_params(name, params, cls.BUILD_PARAMS[name])
        count, dimension = vectors.shape
        settled: dict[str, object]
        if name == "flat":
            index, settled = faiss.IndexFlatIP(dimension), {}
        elif name == "ivf":
            nlist = _positive_int("nlist", params.get("nlist", default_nlist(count)))
            if nlist > count:
                raise InputError(f"ivf needs at least nlist={nlist} vectors to train on, got {count}")
            # probing more cells than exist is probing all of them (FAISS clamps too; record what is done)
            nprobe = min(nlist, _positive_int("nprobe", params.get("nprobe", IVF_DEFAULT_NPROBE)))
            quantizer = faiss.IndexFlatIP(dimension)
            index = faiss.IndexIVFFlat(quantizer, dimension, nlist, faiss.METRIC_INNER_PRODUCT)
            index.cp.seed = seed  # k-means initialisation
            sample = min(count, nlist * IVF_TRAIN_POINTS_PER_LIST)
            rows = np.sort(np.random.default_rng(seed).choice(count, size=sample, replace=False))
            index.train(vectors[rows])
            settled = {"nlist": nlist, "nprobe": nprobe, "train_size": sample}
        else:
            m = _positive_int("M", params.get("M", HNSW_DEFAULT_M), minimum=2)
            index = faiss.IndexHNSWFlat(dimension, m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = _positive_int(
                "ef_construction", params.get("ef_construction", HNSW_DEFAULT_EF_CONSTRUCTION)
            )
            ef_search = _positive_int("ef_search", params.get("ef_search", HNSW_DEFAULT_EF_SEARCH))
            settled = {"M": m, "ef_construction": int(index.hnsw.efConstruction), "ef_search": ef_search}
        index.add(vectors)
        return cls(name, index, settled)

    @property
    def count(self) -> int:
        return int(self._index.ntotal)

    @property
    def params(self) -> dict[str, object]:
        return dict(self._params)

    def _apply_search_params(self) -> None:
        if self.name == "ivf":
            self._index.nprobe = int(self._params["nprobe"])  # type: ignore[call-overload]
        elif self.name == "hnsw":
            self._index.hnsw.efSearch = int(self._params["ef_search"])  # type: ignore[call-overload]

    def set_search_params(self, params: dict[str, object]) -> None:
        check_params(self.name, params, self.SEARCH_PARAMS[self.name])
        for key, value in params.items():
            self._params[key] = _positive_int(key, value)
        if self.name == "ivf":
            self._params["nprobe"] = min(int(self._index.nlist), int(self._params["nprobe"]))  # type: ignore[call-overload]
        self._apply_search_params()

    def add(self, vectors: np.ndarray) -> None:
        self._index.add(vectors)  # IVF: assigned to the existing cells; centroids are not retrained

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, rows = self._index.search(queries, k)
        return scores, rows.astype(np.int64, copy=False)

    def vectors(self) -> np.ndarray:
        """The stored rows, reconstructed (exactly: all three types keep uncompressed vectors)."""
        if self.name != "ivf":
            return np.asarray(self._index.reconstruct_n(0, self.count), dtype=np.float32)
        faiss = faiss_module()
        self._index.make_direct_map()  # IVF stores rows by cell; the map finds row i
        try:
            return np.asarray(self._index.reconstruct_n(0, self.count), dtype=np.float32)
        finally:
            self._index.set_direct_map_type(faiss.DirectMap.NoMap)

    def save(self, folder: Path) -> None:
        faiss_module().write_index(self._index, str(folder / FAISS_FILE))

    @classmethod
    def load(cls, folder: Path, name: str, dimension: int, params: dict[str, object]) -> FaissBackend:
        """Read ``index.faiss`` (FAISS's own format; nothing is unpickled) and check it is what index.json says."""
        faiss = faiss_module()
        path = folder / FAISS_FILE
        if not path.is_file():
            raise InputError("missing index file", path)
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:
            # FAISS prefixes "Error in <C++ signature> at <file>:<line>: "; the rest is the reason
            reason = re.sub(r"^Error in .*? at \S+:\d+: ", "", str(exc).strip()) or type(exc).__name__
            raise InputError(f"not a readable FAISS index ({reason})", path) from None
        expected = {"flat": faiss.IndexFlatIP, "ivf": faiss.IndexIVFFlat, "hnsw": faiss.IndexHNSWFlat}[name]
        if not isinstance(index, expected):
            found = type(index).__name__
            raise InputError(f"expected a {expected.__name__} (index.json says {name}), found {found}", path)
        if index.d != dimension or index.metric_type != faiss.METRIC_INNER_PRODUCT:
            raise InputError(
                f"expected an inner-product index of dimension {dimension}, found dimension {index.d}", path
            )
        try:
            check_params(name, params, (*cls.BUILD_PARAMS[name], "train_size"))
            for key in cls.SEARCH_PARAMS[name]:
                params[key] = _positive_int(key, params.get(key))
        except InputError as exc:
            raise InputError(f"backend_params: {exc.reason}", folder / "index.json") from None
        return cls(name, index, params)
