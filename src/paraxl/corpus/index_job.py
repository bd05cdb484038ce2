"""The shard mapper of a sharded index build: one embeddings shard -> one FAISS index file of its rows.

:class:`ShardIndexer` is a callable class (``__init__(settings)``, ``__call__(task) -> result``, both
plain JSON-able values), so any engine can run it: in this process, in spawned worker processes, as
Ray actors. It reads the trained, empty index once, then per shard: checks the shard's files against the
manifest's sha256s and row range, adds the shard's rows to a copy of the trained index under their
corpus row numbers (IVF: ``add_with_ids``; flat keeps rows in order, the merge appends shards in order),
and writes ``shard-<s>.faiss`` atomically (a killed build leaves finished shard files, or none, never half
of one). Memory: one shard's vectors and its index.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from paraxl.errors import InputError
from paraxl.io.atomic import atomic_path
from paraxl.io.hashing import file_sha256
from paraxl.retrieval import unit_float32_rows
from paraxl.retrieval.faiss_index import faiss_module


@dataclass(frozen=True)
class IndexShardTask:
    """One embeddings shard as the manifest records it (file names relative to the embeddings folder)."""

    index: int
    embeddings: str
    embeddings_sha256: str
    ids: str
    ids_sha256: str
    first_id: int
    rows: int
    dimension: int

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> IndexShardTask:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class IndexShardResult:
    """A written shard index file, or the input error that stopped the shard (``error``)."""

    index: int
    rows: int = 0
    file: str = ""
    seconds: float = 0.0
    error: str | None = None
    error_path: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> IndexShardResult:
        return cls(**json.loads(text))

    def input_error(self) -> InputError:
        return InputError(self.error or "unknown error", self.error_path)


@dataclass(frozen=True)
class PopulateSettings:
    """Where the shards are, where shard indexes go, the trained index file; ``threads``: FAISS (OpenMP)
    threads per worker (0: FAISS's default, all cores; N workers want cores / N each)."""

    embeddings_dir: str
    work_dir: str
    trained_file: str
    index_type: str
    threads: int = 0


def shard_index_name(index: int) -> str:
    return f"shard-{index:06d}.faiss"


def read_shard(folder: Path, task: IndexShardTask, rows: np.ndarray | None = None) -> np.ndarray:
    """Shard ``task``'s (rows, dim) float32 unit rows (or only its rows ``rows``, shard-relative), after
    checking both files against the manifest: sha256, shape, and ids = its corpus row numbers.

    Raises:
        InputError: naming the file (a missing, altered or malformed shard).
    """
    paths = (folder / task.embeddings, folder / task.ids)
    for path, expected in zip(paths, (task.embeddings_sha256, task.ids_sha256), strict=True):
        if not path.is_file():
            raise InputError("missing embeddings shard file (listed as done in manifest.json)", path)
        if file_sha256(path) != expected:
            raise InputError("differs from its sha256 in manifest.json: the shard was altered or damaged", path)
    try:
        vectors = np.load(paths[0], mmap_mode="r", allow_pickle=False)  # (rows, dim) float16/32, not read yet
        ids = np.load(paths[1], allow_pickle=False)  # (rows,) int64
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"not a readable .npy array ({exc})", paths[0]) from None
    if vectors.ndim != 2 or vectors.shape != (task.rows, task.dimension) or vectors.dtype.kind != "f":
        raise InputError(f"expected a ({task.rows}, {task.dimension}) float matrix, found {vectors.shape}", paths[0])
    if not np.array_equal(ids, np.arange(task.first_id, task.first_id + task.rows)):
        raise InputError(f"expected the row numbers {task.first_id}..{task.first_id + task.rows - 1}", paths[1])
    chosen = vectors if rows is None else vectors[rows]
    try:
        return unit_float32_rows(np.asarray(chosen), "embeddings")
    except InputError as exc:
        raise InputError(exc.reason, paths[0]) from None


class ShardIndexer:
    """Read the trained index once; each call adds one shard's rows to a copy and writes it."""

    def __init__(self, settings: PopulateSettings) -> None:
        self.settings = settings
        self.faiss = faiss_module()
        if settings.threads > 0:
            self.faiss.omp_set_num_threads(settings.threads)
        self.trained = self.faiss.read_index(settings.trained_file)

    def __call__(self, task: IndexShardTask) -> IndexShardResult:
        """Index shard ``task`` into ``shard-<s>.faiss``; an input error comes back as the result, not raised."""
        start = time.perf_counter()
        try:
            vectors = read_shard(Path(self.settings.embeddings_dir), task)
        except InputError as exc:
            return IndexShardResult(task.index, error=exc.reason, error_path=exc.path)
        index: Any = self.faiss.clone_index(self.trained)
        if self.settings.index_type == "flat":  # no ids: rows in order, the shards merged in order
            index.add(vectors)
        else:
            index.add_with_ids(vectors, np.arange(task.first_id, task.first_id + task.rows, dtype=np.int64))
        name = shard_index_name(task.index)
        with atomic_path(Path(self.settings.work_dir) / name) as tmp:
            self.faiss.write_index(index, os.fspath(tmp))
        return IndexShardResult(task.index, rows=task.rows, file=name, seconds=time.perf_counter() - start)
