"""A FAISS index built shard by shard from an embeddings folder: train on a sample, populate per shard, merge.

    train     the empty flat / IVF / IVF-PQ index, trained on a seeded sample of rows drawn across the
              shards (the very rows an unsharded build of the same vectors and seed draws:
              :func:`~paraxl.retrieval.faiss_index.training_rows`), read shard by shard;
    populate  :class:`~paraxl.corpus.index_job.ShardIndexer` per shard, in this process or in N spawned
              worker processes: ``shard-<s>.faiss`` each, written atomically;
    merge     FAISS's ``merge_from``, shard after shard in corpus order, into one in-memory index.

The result is the ordinary index folder (``index.faiss`` + ``items.jsonl`` + ``index.json``) that
``paraxl search`` and ``paraxl serve --index`` load, recording the manifest's model identity.

Why ``merge_from`` and not ``faiss.contrib.ondisk.merge_ondisk``: the merged index must be the one-file
``index.faiss`` that search and the service read today (and the folder is written into a temporary
folder, then renamed: an ``OnDiskInvertedLists`` index names its ``.ivfdata`` file by path, which the
rename would break). merge_from moves each shard's lists into the merged index, so the peak memory is
the merged index plus one shard's (IVF-PQ 384-d, 48-byte codes: ~56 bytes a vector, 0.56 GB at 10M);
an index larger than memory would want the on-disk lists (and a memory-mapped read) instead.

Resume: the work folder ``.<output>.parts`` beside the output keeps the trained index and the finished
shard files; a run of the same build (same manifest shards, type, parameters, seed) reuses them, any
other build starts it afresh. It is removed once the index folder is in place.
"""

from __future__ import annotations

import concurrent.futures as futures
import json
import multiprocessing
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from paraxl.corpus.index_job import (
    IndexShardResult,
    IndexShardTask,
    PopulateSettings,
    ShardIndexer,
    read_shard,
    shard_index_name,
)
from paraxl.corpus.index_source import check_model, load_manifest, shard_tasks
from paraxl.corpus.index_write import write_index_folder
from paraxl.errors import InputError
from paraxl.io.atomic import write_json_atomic
from paraxl.modeling.threads import physical_cores
from paraxl.retrieval import FaissIndex
from paraxl.retrieval.faiss_index import faiss_module, new_index, plan_index, training_rows
from paraxl.serving import index_files

SHARDED_TYPES = ("flat", "ivf", "ivfpq")  # HNSW graphs cannot be merged; exact wants one matrix
TRAINED_FILE = "trained.faiss"
BUILD_FILE = "build.json"

ProgressHandler = Callable[[int, int], None]  # (shards done, shards in all)


@dataclass(frozen=True)
class ShardedBuildRequest:
    embeddings_dir: Path
    output: Path
    index_type: str = "ivfpq"
    params: dict[str, object] = field(default_factory=dict)
    seed: int = 0
    workers: int = 1
    model: str | None = None  # the user's --model: must be the manifest's
    texts: bool = True


@dataclass(frozen=True)
class ShardedBuildSummary:
    count: int
    shards: int
    reused: int  # shard files of an earlier, killed run of the same build
    params: dict[str, object]
    bytes_per_vector: int
    file_bytes: int  # index.faiss on disk
    seconds: dict[str, float]  # train, populate, merge, write


def build_sharded(request: ShardedBuildRequest, progress: ProgressHandler | None = None) -> ShardedBuildSummary:
    """Build ``request.output`` from ``request.embeddings_dir``; see the module docstring.

    Raises:
        InputError: an incomplete or damaged embeddings folder, a --model other than the embeddings',
            an index type that cannot be built sharded, bad parameters.
    """
    if request.index_type not in SHARDED_TYPES:
        raise InputError(
            f"index type {request.index_type!r} cannot be built from shards (HNSW graphs do not merge); "
            f"use one of {', '.join(SHARDED_TYPES)}, or `paraxl index rebuild` the result"
        )
    if request.workers < 1:
        raise InputError(f"--workers must be at least 1, got {request.workers}")
    index_files.check_target(request.output)
    document = load_manifest(request.embeddings_dir)
    if request.model is not None:
        check_model(document, request.model, request.embeddings_dir / "manifest.json")
    tasks = shard_tasks(document)
    count, dimension = sum(task.rows for task in tasks), tasks[0].dimension
    settled = plan_index(request.index_type, count, dimension, dict(request.params))
    work = request.output.parent / f".{request.output.name}.parts"
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    _prepare_work(work, request, tasks, settled)
    seconds["train"] = time.perf_counter() - start
    pending = [task for task in tasks if not (work / shard_index_name(task.index)).is_file()]
    start = time.perf_counter()
    populate(request, work, pending, len(tasks), progress)
    seconds["populate"] = time.perf_counter() - start
    start = time.perf_counter()
    merged = merge_shards(work, [task.index for task in tasks], request.index_type, settled)
    seconds["merge"] = time.perf_counter() - start
    start = time.perf_counter()
    write_index_folder(request.output, merged, document, request.texts)
    seconds["write"] = time.perf_counter() - start
    shutil.rmtree(work, ignore_errors=True)
    return ShardedBuildSummary(
        count=merged.count,
        shards=len(tasks),
        reused=len(tasks) - len(pending),
        params=merged.params,
        bytes_per_vector=merged.bytes_per_vector,
        file_bytes=(request.output / index_files.FAISS_FILE).stat().st_size,
        seconds={name: round(value, 3) for name, value in seconds.items()},
    )


def _prepare_work(
    work: Path, request: ShardedBuildRequest, tasks: list[IndexShardTask], settled: dict[str, object]
) -> None:
    """The work folder holding this build's trained index: kept from an earlier run of the same build,
    else started afresh (the trained index first, then ``build.json``: a kill between leaves no record)."""
    record = {
        "embeddings": str(request.embeddings_dir.resolve()),
        "shards": [task.to_json() for task in tasks],
        "index_type": request.index_type,
        "params": settled,
        "seed": request.seed,
    }
    try:
        if json.loads((work / BUILD_FILE).read_text(encoding="utf-8")) == record and (work / TRAINED_FILE).is_file():
            return
    except (OSError, ValueError):
        pass
    if work.exists():
        shutil.rmtree(work)  # another build's (or a half-started) work folder: ours, by its name
    work.mkdir(parents=True)
    sample = None
    if request.index_type != "flat":
        sample = training_sample(request.embeddings_dir, tasks, int(settled["train_size"]), request.seed)  # type: ignore[call-overload]
    trained = new_index(request.index_type, tasks[0].dimension, settled, request.seed, sample)
    faiss_module().write_index(trained, str(work / TRAINED_FILE))
    write_json_atomic(work / BUILD_FILE, record)


def training_sample(folder: Path, tasks: Sequence[IndexShardTask], size: int, seed: int) -> np.ndarray:
    """The (size, dim) float32 training rows, gathered shard by shard (each shard memory-mapped, only
    its sampled rows read): the rows :func:`training_rows` picks among all ``sum(rows)`` rows."""
    rows = training_rows(sum(task.rows for task in tasks), size, seed)  # sorted corpus row numbers
    parts = []
    for task in tasks:
        low, high = np.searchsorted(rows, [task.first_id, task.first_id + task.rows])
        if high > low:
            parts.append(read_shard(folder, task, rows[low:high] - task.first_id))
    return np.concatenate(parts)


def populate(
    request: ShardedBuildRequest,
    work: Path,
    pending: Sequence[IndexShardTask],
    total: int,
    progress: ProgressHandler | None,
) -> None:
    """Run the shard mapper over ``pending``: in this process (1 worker) or N spawned processes, each
    with cores / N FAISS threads; the first shard with an input error stops the build (raised here)."""
    threads = 0 if request.workers == 1 else max(1, physical_cores() // request.workers)
    settings = PopulateSettings(
        str(request.embeddings_dir), str(work), str(work / TRAINED_FILE), request.index_type, threads
    )
    done = total - len(pending)
    if progress is not None:
        progress(done, total)
    pool: futures.ProcessPoolExecutor | None = None
    results: Iterator[IndexShardResult]
    if request.workers == 1 or len(pending) <= 1:
        mapper = ShardIndexer(settings)
        results = (mapper(task) for task in pending)
    else:
        context = multiprocessing.get_context("spawn")  # no fork of a process holding OpenMP threads
        pool = futures.ProcessPoolExecutor(
            request.workers, mp_context=context, initializer=_start_worker, initargs=(settings,)
        )
        results = pool.map(_index_in_worker, pending)  # in order; at most the workers' shards in memory
    try:
        for result in results:
            if result.error is not None:
                raise result.input_error()
            done += 1
            if progress is not None:
                progress(done, total)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


_WORKER_MAPPER: ShardIndexer | None = None  # one per worker process, built by its initializer


def _start_worker(settings: PopulateSettings) -> None:
    global _WORKER_MAPPER
    _WORKER_MAPPER = ShardIndexer(settings)


def _index_in_worker(task: IndexShardTask) -> IndexShardResult:
    assert _WORKER_MAPPER is not None, "the pool initializer builds the mapper"
    return _WORKER_MAPPER(task)


def merge_shards(work: Path, shards: Sequence[int], index_type: str, settled: dict[str, object]) -> FaissIndex:
    """The shard files merged in corpus order into the trained index (FAISS's ``merge_from``: each
    shard's codes and ids are moved, one shard read at a time)."""
    faiss = faiss_module()
    merged = faiss.read_index(str(work / TRAINED_FILE))
    for shard in shards:
        part = faiss.read_index(str(work / shard_index_name(shard)))
        merged.merge_from(part, 0)  # add_id 0: the ids are the corpus row numbers already
    return FaissIndex(index_type, merged, settled)
