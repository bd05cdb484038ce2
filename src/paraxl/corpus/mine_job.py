"""The kNN mapper of sharded bitext mining: one task = one query shard's neighbours on the other side.

Every engine runs this class (in the driver, in local worker processes, as Ray Data actors). A task
searches its query rows (a block-aligned range of one shard, :func:`~paraxl.retrieval.sharded_knn.aligned_range`)
against all shards of the other side, read one tile at a time (:func:`~paraxl.retrieval.sharded_knn.sharded_knn`),
and writes two files to the work folder, each atomically (a killed worker leaves no half file, so a rerun
finds every finished task and resumes):
    ``<direction>-<index>.sims.npy``  (rows, k') float64 cosines, descending along a row;
    ``<direction>-<index>.ind.npy``   (rows, k') int64 rows of the other side.
"""

from __future__ import annotations

import json
import os
import socket
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from paraxl.errors import InputError
from paraxl.io.atomic import atomic_path
from paraxl.retrieval.sharded_knn import ShardRows, sharded_knn


@dataclass(frozen=True)
class KnnSettings:
    """What every worker needs (plain values: it crosses processes and Ray)."""

    source_shards: tuple[str, ...]
    target_shards: tuple[str, ...]
    k: int
    work_dir: str
    threads: int = 0  # BLAS threads per worker while it searches (0: the library's own)
    query_block: int | None = None  # query rows per block (None: query_block_rows of the corpus)


@dataclass(frozen=True)
class KnnTask:
    direction: str  # "forward" or "backward"
    index: int  # the query shard
    start: int  # query rows start..stop-1 (block-aligned)
    stop: int

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> KnnTask:
        return cls(**json.loads(text))

    def files(self, work_dir: Path) -> tuple[Path, Path]:
        """(similarities file, indices file) of this task."""
        stem = f"{self.direction}-{self.index:06d}"
        return work_dir / f"{stem}.sims.npy", work_dir / f"{stem}.ind.npy"

    def finished(self, work_dir: Path, k: int) -> bool:
        """Whether both files are there with this task's shape (a rerun skips it)."""
        try:
            shapes = [np.load(path, mmap_mode="r").shape for path in self.files(work_dir)]
        except (OSError, ValueError):
            return False
        return shapes == [(self.stop - self.start, k)] * 2


@dataclass(frozen=True)
class KnnResult:
    direction: str
    index: int
    seconds: float = 0.0
    worker: str = ""
    error: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> KnnResult:
        return cls(**json.loads(text))


class KnnMapper:
    """Open both sides' shards once (memory-mapped); :meth:`map_json` per task."""

    def __init__(self, settings: KnnSettings) -> None:
        self.settings = settings
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self.sides = {
            "source": ShardRows([Path(path) for path in settings.source_shards]),
            "target": ShardRows([Path(path) for path in settings.target_shards]),
        }

    def search(self, task: KnnTask) -> KnnResult:
        """Search and write task ``task``; an input error comes back as the result, not raised."""
        begin = time.perf_counter()
        queries, corpus = ("source", "target") if task.direction == "forward" else ("target", "source")
        try:
            with _blas_threads(self.settings.threads):
                sides = self.sides[queries], self.sides[corpus]
                block = self.settings.query_block
                sims, indices = sharded_knn(sides[0], task.start, task.stop, sides[1], self.settings.k, block)
        except InputError as exc:
            return KnnResult(task.direction, task.index, error=str(exc))
        sims_file, indices_file = task.files(Path(self.settings.work_dir))
        for target, array in ((indices_file, indices), (sims_file, sims)):
            with atomic_path(target) as tmp, tmp.open("wb") as handle:
                np.save(handle, array)
        return KnnResult(task.direction, task.index, time.perf_counter() - begin, self.worker)

    def map_json(self, task: str) -> str:
        return self.search(KnnTask.from_json(task)).to_json()

    @staticmethod
    def error_result(task: str, error: InputError) -> str:
        """Task ``task``'s result when the shards could not be opened (``error``)."""
        parsed = KnnTask.from_json(task)
        return KnnResult(parsed.direction, parsed.index, error=str(error)).to_json()


def _blas_threads(threads: int) -> AbstractContextManager[object]:
    """This worker's share of the cores for the duration of one search (N workers x all cores each would
    oversubscribe the machine N times over); restored after it, so an in-process worker leaves the
    caller's BLAS settings as they were. 0: no limit."""
    if threads <= 0:
        return nullcontext()
    from threadpoolctl import threadpool_limits

    limits: AbstractContextManager[object] = threadpool_limits(threads)
    return limits
