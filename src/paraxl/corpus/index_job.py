"""The shard mapper of a sharded index build: one embeddings shard -> one FAISS index file of its rows.

:class:`ShardIndexer` is a callable class (``__init__(settings)``, ``__call__(task) -> result``, both
plain JSON-able values; :meth:`~ShardIndexer.map_json` in JSON), so any engine of
:mod:`~paraxl.corpus.engines` runs it: in this process, in spawned worker processes, as Ray actors (the
embeddings and the work folder must then be on a file system every node sees). It reads the trained,
empty index once, then per shard: checks the shard's files against the manifest's sha256s and row
range, adds the shard's rows to a copy of the trained index under their
corpus row numbers (IVF: ``add_with_ids``; flat keeps rows in order, the merge appends shards in order),
and writes ``shard-<s>.faiss`` atomically (a killed build leaves finished shard files, or none, never half
of one). Memory: one shard's vectors and its index.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from paraxl.corpus.embeddings_folder import EmbeddingShard, open_shard
from paraxl.errors import InputError
from paraxl.io.atomic import atomic_path
from paraxl.retrieval import unit_float32_rows
from paraxl.retrieval.faiss_index import faiss_module


@dataclass(frozen=True)
class IndexShardResult:
    """A written shard index file, or the input error that stopped the shard (``error``)."""

    index: int
    rows: int = 0
    seconds: float = 0.0
    worker: str = ""  # host:pid of the process that indexed it
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


def read_shard(folder: Path, shard: EmbeddingShard, rows: np.ndarray | None = None) -> np.ndarray:
    """Shard ``shard``'s (rows, dim) float32 unit rows (or only its rows ``rows``, shard-relative), its
    files checked against the manifest (:func:`~paraxl.corpus.embeddings_folder.open_shard`).

    Raises:
        InputError: naming the file (a missing, altered or malformed shard, a zero or non-finite row).
    """
    vectors = open_shard(folder, shard)  # memory-mapped: only the chosen rows are read
    chosen = vectors if rows is None else vectors[rows]
    try:
        return unit_float32_rows(np.asarray(chosen), "embeddings")
    except InputError as exc:
        raise InputError(exc.reason, folder / shard.embeddings) from None


class ShardIndexer:
    """Read the trained index once; each call adds one shard's rows to a copy and writes it."""

    def __init__(self, settings: PopulateSettings) -> None:
        self.settings = settings
        self.faiss = faiss_module()
        if settings.threads > 0:
            self.faiss.omp_set_num_threads(settings.threads)
        try:
            self.trained = self.faiss.read_index(settings.trained_file)
        except RuntimeError as exc:  # FAISS's error for a missing or damaged file
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise InputError(f"unreadable trained index ({reason})", settings.trained_file) from None
        self.worker = f"{socket.gethostname()}:{os.getpid()}"

    def __call__(self, task: EmbeddingShard) -> IndexShardResult:
        """Index shard ``task`` into ``shard-<s>.faiss``; an input error comes back as the result, not raised."""
        start = time.perf_counter()
        try:
            vectors = read_shard(Path(self.settings.embeddings_dir), task)
        except InputError as exc:
            return IndexShardResult(task.index, worker=self.worker, error=exc.reason, error_path=exc.path)
        index: Any = self.faiss.clone_index(self.trained)
        if self.settings.index_type == "flat":  # no ids: rows in order, the shards merged in order
            index.add(vectors)
        else:
            index.add_with_ids(vectors, np.arange(task.first_id, task.first_id + task.rows, dtype=np.int64))
        name = shard_index_name(task.index)
        with atomic_path(Path(self.settings.work_dir) / name) as tmp:
            self.faiss.write_index(index, os.fspath(tmp))
        seconds = time.perf_counter() - start
        return IndexShardResult(task.index, rows=task.rows, seconds=seconds, worker=self.worker)

    def map_json(self, task: str) -> str:
        """The :class:`~paraxl.corpus.engines.ShardMapper` form: a JSON shard -> a JSON result."""
        return self(EmbeddingShard.from_json(task)).to_json()

    @staticmethod
    def error_result(task: str, error: InputError) -> str:
        """Shard ``task``'s result when the trained index could not be read (``error``)."""
        index = EmbeddingShard.from_json(task).index
        return IndexShardResult(index, error=error.reason, error_path=error.path).to_json()
