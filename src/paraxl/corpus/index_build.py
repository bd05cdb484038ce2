"""A FAISS index built shard by shard from an embeddings folder: train on a sample, populate per shard, merge.

    train     the empty flat / IVF / IVF-PQ index, trained on a seeded sample of rows drawn across the
              shards (the very rows an unsharded build of the same vectors and seed draws:
              :func:`~paraxl.retrieval.faiss_index.training_rows`), read shard by shard;
    populate  :class:`~paraxl.corpus.index_job.ShardIndexer` per shard on an engine of
              :mod:`~paraxl.corpus.engines` (``local``: this process or N spawned worker processes;
              ``ray``: Ray Data actors): ``shard-<s>.faiss`` each, written atomically;
    merge     FAISS's ``merge_from``, shard after shard in corpus order, into one in-memory index.

The result is the ordinary index folder (``index.faiss`` + ``items.jsonl`` + ``index.json``) that
``paraxl search`` and ``paraxl serve --index`` load, recording the manifest's model identity and, under
``build`` in ``index.json``, how it was built (engine, workers, timings per step and shard). The merged
index does not depend on the engine or the number of workers (byte for byte: each shard file is one
shard's rows added to the same trained index, merged in corpus order).

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

import datetime
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from paraxl.corpus.embeddings_folder import EmbeddingShard, input_sources, load_manifest, shard_list
from paraxl.corpus.engines import ProgressHandler, check_options, run_mapper, worker_cpus
from paraxl.corpus.index_job import IndexShardResult, PopulateSettings, ShardIndexer, read_shard, shard_index_name
from paraxl.corpus.index_write import write_index_folder
from paraxl.corpus.model_identity import check_model
from paraxl.errors import InputError
from paraxl.io.atomic import read_json_record, write_json_atomic
from paraxl.retrieval import FaissIndex
from paraxl.retrieval.faiss_index import faiss_module, new_index, plan_index, training_rows
from paraxl.serving import index_files

SHARDED_TYPES = ("flat", "ivf", "ivfpq")  # HNSW graphs cannot be merged; exact wants one matrix
TRAINED_FILE = "trained.faiss"
BUILD_FILE = "build.json"


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
    engine: str = "local"
    ray_address: str | None = None
    cpus_per_worker: int | None = None  # FAISS threads (and Ray CPUs) per worker; None: cores / workers


@dataclass(frozen=True)
class ShardedBuildSummary:
    count: int
    shards: int
    reused: int  # shard files of an earlier, killed run of the same build
    params: dict[str, object]
    bytes_per_vector: int
    file_bytes: int  # index.faiss on disk
    seconds: dict[str, float]  # train, populate, merge, write
    build: dict[str, object]  # the provenance recorded in index.json: engine, workers, timings


def build_sharded(request: ShardedBuildRequest, progress: ProgressHandler | None = None) -> ShardedBuildSummary:
    """Build ``request.output`` from ``request.embeddings_dir``; see the module docstring.

    Raises:
        InputError: an incomplete or damaged embeddings folder, a --model other than the embeddings',
            an index type that cannot be built sharded, bad parameters or engine options.
    """
    _check(request)
    index_files.check_target(request.output)
    document = load_manifest(request.embeddings_dir)
    if request.model is not None:
        check_model(document, request.model, request.embeddings_dir / "manifest.json")
    # the inputs of the texts, checked now: a gone or changed input fails before training, not after it
    inputs = input_sources(request.embeddings_dir, document) if request.texts else None
    tasks = shard_list(document)
    count, dimension = sum(task.rows for task in tasks), tasks[0].dimension
    settled = plan_index(request.index_type, count, dimension, dict(request.params))
    work = request.output.parent / f".{request.output.name}.parts"
    began = datetime.datetime.now(datetime.UTC)
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    _prepare_work(work, request, tasks, settled)
    seconds["train"] = time.perf_counter() - start
    pending = [task for task in tasks if not (work / shard_index_name(task.index)).is_file()]
    start = time.perf_counter()
    run = populate(request, work, pending, len(tasks), progress)
    seconds["populate"] = time.perf_counter() - start
    start = time.perf_counter()
    merged = merge_shards(work, [task.index for task in tasks], request.index_type, settled)
    seconds["merge"] = time.perf_counter() - start
    build = {"started": began.isoformat(timespec="seconds"), **run, "shards": len(tasks)}
    build |= {"shards_reused": len(tasks) - len(pending), "seconds": {k: round(v, 3) for k, v in seconds.items()}}
    start = time.perf_counter()
    write_index_folder(request.output, merged, request.embeddings_dir, document, inputs, build)
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
        build=build,
    )


def _check(request: ShardedBuildRequest) -> None:
    if request.index_type not in SHARDED_TYPES:
        raise InputError(
            f"index type {request.index_type!r} cannot be built from shards (HNSW graphs do not merge); "
            f"use one of {', '.join(SHARDED_TYPES)}, or `paraxl index rebuild` the result"
        )
    # before any training: bad engine options, or one line saying how to install Ray
    check_options(request.engine, request.workers, request.ray_address, request.cpus_per_worker)


def _prepare_work(
    work: Path, request: ShardedBuildRequest, tasks: list[EmbeddingShard], settled: dict[str, object]
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
    if read_json_record(work / BUILD_FILE) == record and (work / TRAINED_FILE).is_file():
        return
    if work.exists():
        shutil.rmtree(work)  # another build's (or a half-started) work folder: ours, by its name
    work.mkdir(parents=True)
    sample = None
    if request.index_type != "flat":
        sample = training_sample(request.embeddings_dir, tasks, int(settled["train_size"]), request.seed)  # type: ignore[call-overload]
    trained = new_index(request.index_type, tasks[0].dimension, settled, request.seed, sample)
    faiss_module().write_index(trained, str(work / TRAINED_FILE))
    write_json_atomic(work / BUILD_FILE, record)


def training_sample(folder: Path, tasks: Sequence[EmbeddingShard], size: int, seed: int) -> np.ndarray:
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
    pending: Sequence[EmbeddingShard],
    total: int,
    progress: ProgressHandler | None,
) -> dict[str, object]:
    """Run the shard mapper over ``pending`` on ``request.engine`` with ``request.workers`` workers of
    ``cpus_per_worker`` FAISS threads each (default: cores / workers; one local worker: FAISS's own, all
    cores); the first shard with an input error stops the build (raised here). Returns the run's record."""
    cpus, threads = worker_cpus(request.engine, request.workers, request.cpus_per_worker)
    settings = PopulateSettings(
        str(request.embeddings_dir), str(work), str(work / TRAINED_FILE), request.index_type, threads
    )
    done = total - len(pending)
    if progress is not None:
        progress(done, total)
    results: list[IndexShardResult] = []

    def on_result(text: str) -> bool:
        nonlocal done
        result = IndexShardResult.from_json(text)
        results.append(result)
        if result.error is not None:
            return True
        done += 1
        if progress is not None:
            progress(done, total)
        return False

    jobs = [task.to_json() for task in pending]
    # one shard left (a resumed build): no pool of processes to start for it
    workers = 1 if request.engine == "local" and len(jobs) <= 1 else request.workers
    run_mapper(request.engine, ShardIndexer, settings, jobs, workers, on_result, request.ray_address, cpus)
    failed = [result for result in results if result.error is not None]
    if failed:
        raise failed[0].input_error()
    return {
        "engine": request.engine,
        "workers": request.workers,
        "cpus_per_worker": cpus,
        "ray_address": request.ray_address,
        "shard_seconds": {str(r.index): round(r.seconds, 4) for r in results},
        "shard_workers": {str(r.index): r.worker for r in results},
    }


def merge_shards(work: Path, shards: Sequence[int], index_type: str, settled: dict[str, object]) -> FaissIndex:
    """The shard files merged in corpus order into the trained index (FAISS's ``merge_from``: each
    shard's codes and ids are moved, one shard read at a time)."""
    faiss = faiss_module()
    merged = faiss.read_index(str(work / TRAINED_FILE))
    for shard in shards:
        part = faiss.read_index(str(work / shard_index_name(shard)))
        merged.merge_from(part, 0)  # add_id 0: the ids are the corpus row numbers already
    return FaissIndex(index_type, merged, settled)
