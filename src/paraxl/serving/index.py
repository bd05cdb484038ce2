"""A vector index over sentence embeddings: ids + optional texts + a search structure, saved as one folder.

Scores are cosine similarities: every vector (corpus and query) is L2-normalised on the way in, so
the inner product that every index type computes is the cosine. Index types (see
:mod:`paraxl.retrieval.search_index`): ``exact`` (numpy brute force), ``flat`` (FAISS brute force),
``ivf``, ``ivfpq`` (compressed codes) and ``hnsw`` (FAISS, approximate); ``auto`` picks exact below
100k vectors and hnsw from there on (:func:`choose_index_type` says why). ``index.json`` keeps the type
under its key ``backend``.

Folder layout (see ``index_files``): ``index.json`` (:class:`IndexInfo` + format version),
``items.jsonl`` (id and text per row) and either ``vectors.npy`` (exact) or ``index.faiss``.
The FAISS types used all keep uncompressed vectors, so no ``vectors.npy`` is stored beside them
(it would double the disk); :meth:`VectorIndex.vectors` reconstructs them for a rebuild.

Searching is safe from several threads at once; ``add`` and ``set_search_params`` must not run
concurrently with anything. Across processes, a writer holds the folder's lock from load to save
(:func:`paraxl.io.locks.folder_lock`, as ``paraxl index add`` does), or rows added meanwhile are lost.

The model an index names answers its queries, so ``index.json`` is not trusted blindly: the model must
match the recorded fingerprints (:func:`check_model_files` before loading, :func:`check_query_model`
after), and a Hub model named there is fetched only with the user's consent (:func:`fetches_from_hub`).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from paraxl.errors import InputError, ModelSpecError
from paraxl.retrieval import INDEX_TYPES, SearchIndex, build_index, unit_float32_rows
from paraxl.serving import index_files

INDEX_TYPE_CHOICES = ("auto", *INDEX_TYPES)

# The "auto" rule. Measured (benchmarks/bench_search.py; 280k real e5-small embeddings; 2 cores):
# - below 100k vectors brute force is exact, needs no build, and costs less than embedding the query
#   (one core: a 384-d scan of 100k rows, 150 MB, ~20 ms; e5-small on one short query ~30 ms), so
#   "exact" (numpy). FAISS's flat scan is never chosen: with the faiss-cpu 1.15 wheel its single
#   queries were no faster than numpy's (1 thread) or 2x slower (2 threads), and batches 5-7x slower
#   (20k and 100k rows); it stays available by name, e.g. for FAISS-format interoperability.
# - from 100k on, a scan per query outweighs everything else and grows with n: "hnsw" answers in well
#   under a millisecond with recall@10 of 0.97 (efSearch 64) on real e5 vectors, where IVF needed
#   nprobe 64 for 0.94; HNSW needs no training, whereas IVF wants >= 39 points per cell and its
#   centroids go stale as items are added. Its costs: a slower build (still far below the time to embed
#   the corpus) and ~2·M·4 bytes of links per vector (+17 % over the 1.5 kB of a 384-d float32 vector).
EXACT_MAX_COUNT = 100_000


def choose_index_type(count: int) -> str:
    """The index type ``auto`` uses for ``count`` vectors (see the comment above for the reasons)."""
    return "exact" if count < EXACT_MAX_COUNT else "hnsw"


@dataclass(frozen=True)
class SearchHit:
    rank: int  # 1-based
    id: str
    text: str | None  # the stored text, when the index keeps texts
    score: float  # cosine similarity (inner product of unit vectors)


@dataclass(frozen=True)
class IndexInfo:
    """What built the index (saved in ``index.json``).

    ``backend`` is the index type (exact, flat, ivf, hnsw) and ``backend_params`` its parameters: the
    names are those of the ``index.json`` keys, kept so that saved indexes stay readable.

    ``model_fingerprint`` is the encoder's ``fingerprint`` (weights + inference backend: what decides
    the vectors); ``weights_fingerprint`` is the model folder's alone, so that a query encoder on another
    inference backend (torch vs ONNX) can be recognised as the same model.
    """

    backend: str
    dimension: int
    count: int
    model: str | None = None
    model_fingerprint: str | None = None
    backend_params: dict[str, object] = field(default_factory=dict)
    prompt_name: str | None = None
    weights_fingerprint: str | None = None
    inference_backend: str | None = None
    created: str | None = None  # ISO 8601, UTC
    paraxl_version: str | None = None


class VectorIndex:
    """Ids and texts mapped to rows of a search index; build with :meth:`build`, or :meth:`load`."""

    def __init__(self, search: SearchIndex, ids: list[str], texts: list[str | None], info: IndexInfo) -> None:
        self._search = search
        self._ids = ids
        self._texts = texts
        self._rows = _row_map(ids)
        self._info = info

    # ------------------------------------------------------------------ build
    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        ids: Sequence[str],
        texts: Sequence[str] | None = None,
        index_type: str = "auto",
        *,
        model: str | None = None,
        model_fingerprint: str | None = None,
        prompt_name: str | None = None,
        seed: int = 0,
        weights_fingerprint: str | None = None,
        inference_backend: str | None = None,
        **params: object,
    ) -> VectorIndex:
        """Index ``vectors`` (n, dim) under ``ids`` (unique strings), keeping ``texts`` if given.

        ``params`` tune the index type: ivf ``nlist``, ``nprobe``; hnsw ``M``, ``ef_construction``,
        ``ef_search``. ``seed`` fixes IVF's training sample and k-means initialisation.
        """
        _check_index_type(index_type)
        matrix = checked_vectors(vectors, None, "vectors")
        if matrix.shape[0] == 0:
            raise InputError("no vectors to index")
        id_list, text_list = _checked_items(ids, texts, matrix.shape[0], {})
        impl = _new_search_index(index_type, matrix, seed, params, copy=np.may_share_memory(matrix, vectors))
        from paraxl.version import __version__

        info = IndexInfo(
            backend=impl.index_type,
            dimension=int(matrix.shape[1]),
            count=len(id_list),
            model=model,
            model_fingerprint=model_fingerprint,
            backend_params=impl.params,
            prompt_name=prompt_name,
            weights_fingerprint=weights_fingerprint,
            inference_backend=inference_backend,
            created=_now(),
            paraxl_version=__version__,
        )
        return cls(impl, id_list, text_list, info)

    def add(self, vectors: np.ndarray, ids: Sequence[str], texts: Sequence[str] | None = None) -> None:
        """Append rows; ids must be new. IVF assigns them to its existing cells (centroids are not
        retrained: after large additions, :meth:`rebuild` re-trains on everything)."""
        matrix = checked_vectors(vectors, self.dimension, "vectors")
        id_list, text_list = _checked_items(ids, texts, matrix.shape[0], self._rows)
        if not id_list:
            return
        self._search.add(matrix)
        start = len(self._ids)
        self._ids.extend(id_list)
        self._texts.extend(text_list)
        self._rows.update((item, start + offset) for offset, item in enumerate(id_list))

    def rebuild(self, index_type: str = "auto", *, seed: int = 0, **params: object) -> VectorIndex:
        """A new index of another type (or freshly trained) over the same items and model record."""
        _check_index_type(index_type)
        impl = _new_search_index(index_type, self._search.vectors(), seed, params, copy=False)
        info = replace(self.info, backend=impl.index_type, backend_params=impl.params, created=_now())
        return VectorIndex(impl, list(self._ids), list(self._texts), info)

    # ----------------------------------------------------------------- search
    def search(self, queries: np.ndarray, k: int = 10) -> list[list[SearchHit]]:
        """``queries`` (q, dim) -> q lists of at most ``k`` hits, best first (all items if k > len)."""
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise InputError(f"k must be an integer >= 1, got {k!r}")
        matrix = checked_vectors(queries, self.dimension, "queries")
        if matrix.shape[0] == 0:
            return []
        scores, rows = self._search.search(matrix, min(int(k), len(self._ids)))  # (q, k) each
        results = []
        for query_scores, query_rows in zip(scores, rows, strict=True):
            hits: list[SearchHit] = []
            for score, row in zip(query_scores.tolist(), query_rows.tolist(), strict=True):
                if row < 0:  # FAISS's "no result" (IVF whose probed cells hold fewer than k items)
                    continue
                hits.append(SearchHit(len(hits) + 1, self._ids[row], self._texts[row], score))
            results.append(hits)
        return results

    def set_search_params(self, **params: object) -> None:
        """Query-time knobs: ivf ``nprobe``, hnsw ``ef_search`` (saved with the index)."""
        self._search.set_search_params(params)

    # ------------------------------------------------------------ inspection
    @property
    def info(self) -> IndexInfo:
        return replace(self._info, count=len(self._ids), backend_params=self._search.params)

    @property
    def dimension(self) -> int:
        return self._info.dimension

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, item: object) -> bool:
        return item in self._rows

    def vectors(self) -> np.ndarray:
        """The stored (unit) vectors, (n, dim) float32, in insertion order."""
        return self._search.vectors()

    def check_new_ids(self, ids: Sequence[str]) -> None:
        """Raise :class:`InputError` if ``ids`` repeat themselves or an indexed id (before any encoding)."""
        _checked_ids(ids, self._rows)

    # --------------------------------------------------------------- storage
    def save(self, folder: Path) -> None:
        """Write the folder atomically (a failure leaves the previous index, or nothing)."""
        index_files.save(Path(folder), self.info, self._search, self._ids, self._texts)

    @classmethod
    def load(cls, folder: Path) -> VectorIndex:
        """Read a saved index; a missing or damaged file raises :class:`InputError` naming it."""
        fields, search, ids, texts = index_files.load(Path(folder))
        return cls(search, ids, texts, IndexInfo(**fields))  # type: ignore[arg-type]


def checked_vectors(vectors: object, dimension: int | None, what: str) -> np.ndarray:
    """``vectors`` as a C-contiguous float32 (n, dim) matrix of unit rows (not copied if it already is).

    Checks the shape, the dimension (``dimension``: the index's; ``None`` while building) and the dtype
    here; :func:`paraxl.retrieval.unit_float32_rows` refuses empty dimensions, NaN and zero rows.
    """
    matrix = np.asarray(vectors)
    if matrix.ndim != 2:
        raise InputError(f"{what} must be a 2-d (n, dim) matrix, got shape {matrix.shape}")
    if dimension is not None and matrix.shape[1] != dimension:
        raise InputError(f"{what} have dimension {matrix.shape[1]}, the index has {dimension}")
    if not (np.issubdtype(matrix.dtype, np.floating) or np.issubdtype(matrix.dtype, np.integer)):
        raise InputError(f"{what} must be numbers, got dtype {matrix.dtype}")
    return unit_float32_rows(matrix, what)


def check_query_model(
    info: IndexInfo,
    fingerprint: str | None,
    weights_fingerprint: str | None = None,
    *,
    model: str | None = None,
    dimension: int | None = None,
    allow_mismatch: bool = False,
) -> str | None:
    """Is the query encoder the one the index was built with? ``None``: yes; a note: probably fine,
    or allowed by ``allow_mismatch``; :class:`ModelSpecError`: no.

    Same ``fingerprint``: the same vectors. Same ``weights_fingerprint`` only: the same model on
    another inference backend (ONNX vs torch; scores differ slightly). A different dimension is an
    error even with ``allow_mismatch``: such vectors cannot be compared at all.
    """
    built_with = info.model or "an unrecorded model"
    if dimension is not None and dimension != info.dimension:
        raise ModelSpecError(
            f"the query model gives {dimension}-d vectors, the index holds {info.dimension}-d ones "
            f"(built with {built_with})"
        )
    if info.model_fingerprint is None:
        return "the index records no model fingerprint; the query model cannot be checked"
    if fingerprint == info.model_fingerprint:
        return None
    if weights_fingerprint is not None and weights_fingerprint == info.weights_fingerprint:
        return (
            f"the index was built with the {info.inference_backend or 'another'} inference backend; "
            "the same weights on another backend give slightly different scores"
        )
    detail = (
        f"the index was built with {built_with} (fingerprint {info.model_fingerprint[:12]}), "
        f"the query model {model or ''} has fingerprint {(fingerprint or 'unknown')[:12]}"
    )
    if allow_mismatch:
        return f"model mismatch allowed: {detail}; scores compare vectors of different models"
    raise ModelSpecError(f"{detail}; use the index's model, rebuild the index, or pass --allow-model-mismatch")


def check_model_files(info: IndexInfo, weights_fingerprint: str, model: str) -> None:
    """Refuse, before its weights load, a model whose files are not those the index was built with.

    ``weights_fingerprint`` is the candidate folder's (a hash of its files, no weights loaded): where
    the index records one and it differs, :func:`check_query_model` would refuse after loading anyway;
    this says so first, so a folder named by a tampered ``index.json`` is never even loaded.
    """
    if info.weights_fingerprint is not None and weights_fingerprint != info.weights_fingerprint:
        raise ModelSpecError(
            f"the index was built with {info.model or 'an unrecorded model'} (weights fingerprint "
            f"{info.weights_fingerprint[:12]}), the query model {model} has weights fingerprint "
            f"{weights_fingerprint[:12]}; use the index's model, rebuild the index, or pass --allow-model-mismatch"
        )


def fetches_from_hub(spec: str) -> bool:
    """Whether loading ``spec`` may download from the Hugging Face Hub (``hub:...`` or a bare ``org/name``
    that is not a local path); an index naming such a model needs the user's explicit consent."""
    if spec.startswith("hub:"):
        return True
    if spec.startswith(("bundled:", ".", "/", "~")):
        return False
    path = Path(spec).expanduser()
    return not path.exists() and not (path.parent != Path() and path.parent.is_dir())


def _check_index_type(index_type: str) -> None:
    if index_type not in INDEX_TYPE_CHOICES:
        raise InputError(f"unknown index type {index_type!r}; use one of {', '.join(INDEX_TYPE_CHOICES)}")


def _new_search_index(
    index_type: str, matrix: np.ndarray, seed: int, params: dict[str, object], copy: bool
) -> SearchIndex:
    """The search index of type ``index_type`` (``auto``: by size) over unit rows ``matrix``.

    ``copy``: ``matrix`` is the caller's array, which the exact index must not keep (FAISS copies anyway).
    """
    chosen = choose_index_type(matrix.shape[0]) if index_type == "auto" else index_type
    return build_index(chosen, matrix, seed, params, copy=copy)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _row_map(ids: Sequence[str]) -> dict[str, int]:
    return {item: row for row, item in enumerate(ids)}


def _checked_ids(ids: Sequence[str], existing: dict[str, int]) -> list[str]:
    if isinstance(ids, str):
        raise InputError("ids must be a sequence of strings, not one string")
    id_list = list(ids)
    seen: set[str] = set()
    for position, item in enumerate(id_list):
        if not isinstance(item, str):
            raise InputError(f"id {position} is {type(item).__name__}, not str")
        if not item:
            raise InputError(f"id {position} is empty")
        if item in seen or item in existing:
            where = "already in the index" if item in existing else "twice in the input"
            raise InputError(f"duplicate id {item!r} ({where})")
        seen.add(item)
    return id_list


def _checked_items(
    ids: Sequence[str], texts: Sequence[str] | None, count: int, existing: dict[str, int]
) -> tuple[list[str], list[str | None]]:
    id_list = _checked_ids(ids, existing)
    if len(id_list) != count:
        raise InputError(f"{count} vectors but {len(id_list)} ids")
    if texts is None:
        return id_list, [None] * count
    if isinstance(texts, str):
        raise InputError("texts must be a sequence of strings, not one string")
    text_list: list[str | None] = list(texts)
    if len(text_list) != count:
        raise InputError(f"{count} vectors but {len(text_list)} texts")
    for position, text in enumerate(text_list):
        if not isinstance(text, str):
            raise InputError(f"text {position} is {type(text).__name__}, not str")
        if not index_files.encodable(text):
            raise InputError(f"text {position} is not valid Unicode (a lone surrogate)")
    return id_list, text_list
