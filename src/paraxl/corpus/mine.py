"""Sharded bitext mining: two embedding folders of ``paraxl encode-corpus`` -> scored 1-to-1 pairs.

Example::

    summary = mine_corpus(MineRequest(Path("emb-de"), Path("emb-en"), Path("pairs.tsv")))

Tasks are query shards: each source shard's k nearest targets (forward) and each target shard's k nearest
sources (backward), exact, over the other side's shards read one tile at a time (:mod:`~paraxl.corpus.mine_job`);
any engine of :mod:`~paraxl.corpus.engines` runs them. The driver merges them, takes each sentence's mean
over its global kNN for the ratio-margin denominators and keeps the greedy 1-to-1 candidates
(:func:`~paraxl.retrieval.margin.margin_candidates`, the same function as ``paraxl mine``): with the exact
search the pairs and scores are bitwise those of ``ratio_margin_candidates(..., index_type="exact")``
run with as many BLAS threads as each worker has (a BLAS may round the last bit of a product otherwise).
Finished tasks stay in ``<output>.work/`` until the end, so a killed run resumes. Both folders are read
through :mod:`~paraxl.corpus.embeddings_folder` (each shard checked against its manifest once, in the
driver), which also re-reads the texts of the kept pairs' rows, shard by shard, from the inputs the
manifests record (as ``paraxl mine`` writes them; ``texts=False``: ids and margins only).
"""

from __future__ import annotations

import datetime
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from paraxl.corpus.embeddings_folder import (
    input_sources,
    load_manifest,
    open_shard,
    shard_list,
    texts_of_rows,
)
from paraxl.corpus.engines import ProgressHandler, check_options, run_mapper, worker_cpus
from paraxl.corpus.mine_job import KnnMapper, KnnResult, KnnSettings, KnnTask
from paraxl.corpus.sources import SourceFile
from paraxl.errors import InputError
from paraxl.io.atomic import read_json_record, write_json_atomic
from paraxl.io.locks import LOCK_FILE, folder_lock
from paraxl.io.outputs import write_tsv
from paraxl.mining.comparability import TYPICAL_THRESHOLD, comparability_warning, share_above
from paraxl.retrieval.margin import MiningCandidates, margin_candidates
from paraxl.retrieval.sharded_knn import aligned_range
from paraxl.retrieval.topk import CORPUS_TILE


@dataclass(frozen=True)
class MineRequest:
    source_dir: Path
    target_dir: Path
    output: Path  # .tsv; the record goes beside it as .json
    k: int = 4
    threshold: float | None = None
    engine: str = "local"
    workers: int = 1
    ray_address: str | None = None
    cpus_per_worker: int | None = None
    texts: bool = True  # add source and target text columns, re-read from the inputs the manifests record
    query_block: int | None = None  # query rows per block and task alignment (None: the search's own; tests)


@dataclass(frozen=True)
class Side:
    """One finished embeddings folder: its shard files and manifest (a row's id is its position)."""

    folder: Path
    shards: tuple[str, ...]
    rows: tuple[int, ...]  # per shard
    document: dict[str, Any]  # the manifest

    @property
    def size(self) -> int:
        return sum(self.rows)

    @property
    def job(self) -> dict[str, Any]:
        """The job identity the folder was encoded with (model, prompt, dtype, inputs)."""
        job: dict[str, Any] = self.document["job"]
        return job

    @property
    def dimension(self) -> int:
        return int(self.document["dimension"])


@dataclass(frozen=True)
class MineSummary:
    pairs: int
    candidates: int
    warning: str | None
    record: Path
    seconds: float


def read_side(folder: Path) -> Side:
    """The folder's complete manifest and shards, each shard's files checked once here, in the driver,
    against the manifest (sha256, shape, ids = row numbers); InputError naming the file otherwise."""
    document = load_manifest(folder)
    shards = shard_list(document)
    for shard in shards:
        open_shard(folder, shard)
    return Side(
        folder,
        tuple(str((folder / shard.embeddings).resolve()) for shard in shards),  # workers may run elsewhere
        tuple(shard.rows for shard in shards),
        document,
    )


def check_compatible(source: Side, target: Side) -> None:
    """One line when the two folders hold vectors of different models, prompts or widths."""
    for key, what in (("model", "models"), ("prompt", "prompts")):
        if source.job.get(key) != target.job.get(key):
            raise InputError(
                f"{source.folder} and {target.folder} hold embeddings of different {what} "
                f"({source.job.get(key)} vs {target.job.get(key)}); mine vectors of one model and prompt"
            )
    if source.dimension != target.dimension:
        raise InputError(f"{source.folder} has dimension {source.dimension} but {target.folder} {target.dimension}")


def plan_tasks(source: Side, target: Side, query_block: int | None = None) -> list[KnnTask]:
    """One task per query shard and direction, over its block-aligned rows (empty ones dropped)."""
    tasks = []
    for direction, queries, corpus in (("forward", source, target), ("backward", target, source)):
        first = 0
        for index, rows in enumerate(queries.rows):
            start, stop = aligned_range(first, first + rows, queries.size, corpus.size, query_block)
            if stop > start:
                tasks.append(KnnTask(direction, index, start, stop))
            first += rows
    return tasks


def mine_corpus(request: MineRequest, progress: ProgressHandler | None = None) -> MineSummary:
    """Mine ``request``; see the module docstring. Writes the TSV and its ``.json`` record."""
    _check(request)
    source, target = read_side(request.source_dir), read_side(request.target_dir)
    check_compatible(source, target)
    # the inputs of the texts, checked now: a gone or changed input fails before the search, not after it
    inputs = None
    if request.texts:
        inputs = (input_sources(source.folder, source.document), input_sources(target.folder, target.document))
    work = request.output.resolve().with_name(request.output.name + ".work")  # absolute: workers may run elsewhere
    # one run per output: another run of the same -o would empty or delete this run's work folder
    with folder_lock(work, "mining work folder"):
        return _mine(request, (source, target), work, inputs, progress)


def _mine(
    request: MineRequest,
    sides: tuple[Side, Side],
    work: Path,
    inputs: tuple[list[SourceFile], list[SourceFile]] | None,
    progress: ProgressHandler | None,
) -> MineSummary:
    """Search the pending tasks into ``work`` (held locked), merge, score and write; see :func:`mine_corpus`."""
    source, target = sides
    tasks = plan_tasks(source, target, request.query_block)
    _prepare_work(work, request, source, target)
    pending = [task for task in tasks if not task.finished(work, _k(request.k, task, source, target))]
    cpus, threads = worker_cpus(request.engine, request.workers, request.cpus_per_worker)
    settings = KnnSettings(source.shards, target.shards, request.k, str(work), threads, request.query_block)
    results: list[KnnResult] = []
    errors: list[KnnResult] = []

    def on_result(text: str) -> bool:
        result = KnnResult.from_json(text)
        (errors if result.error is not None else results).append(result)
        if progress is not None:
            progress(len(tasks) - len(pending) + len(results), len(tasks))
        return result.error is not None

    if progress is not None:
        progress(len(tasks) - len(pending), len(tasks))
    began, start = datetime.datetime.now(datetime.UTC), time.perf_counter()
    jobs = [task.to_json() for task in pending]
    run_mapper(request.engine, KnnMapper, settings, jobs, request.workers, on_result, request.ray_address, cpus)
    if errors:
        raise InputError(errors[0].error or "unknown error")
    search_seconds = time.perf_counter() - start
    candidates = _candidates(tasks, work, source.size, target.size)
    run = {
        "engine": request.engine,
        "workers": request.workers,
        "cpus_per_worker": cpus,
        "ray_address": request.ray_address,
        "started": began.isoformat(timespec="seconds"),
        "tasks": len(tasks),
        "tasks_skipped": len(tasks) - len(pending),
        "search_seconds": round(search_seconds, 3),
        "task_seconds": {f"{r.direction}-{r.index}": round(r.seconds, 4) for r in results},
        "task_workers": {f"{r.direction}-{r.index}": r.worker for r in results},
    }
    summary = _write(request, (source, target), candidates, run, start, inputs)
    shutil.rmtree(work)
    return summary


def _k(k: int, task: KnnTask, source: Side, target: Side) -> int:
    return min(k, target.size if task.direction == "forward" else source.size)


def _candidates(tasks: list[KnnTask], work: Path, n: int, m: int) -> MiningCandidates:
    """Merge the tasks' files into the two kNN tables (in row order) and score them."""
    tables = []
    for direction, rows in (("forward", n), ("backward", m)):
        files = [task.files(work) for task in tasks if task.direction == direction]
        sims = np.concatenate([np.load(pair[0]) for pair in files])  # (rows, k')
        indices = np.concatenate([np.load(pair[1]) for pair in files])
        assert sims.shape[0] == rows, "the tasks cover every row once"
        tables.append((sims, indices))
    try:
        return margin_candidates(tables[0][0], tables[0][1], tables[1][0], tables[1][1])
    except ValueError as exc:
        raise InputError(str(exc)) from None


def _write(
    request: MineRequest,
    sides: tuple[Side, Side],
    candidates: MiningCandidates,
    run: dict[str, Any],
    start: float,
    inputs: tuple[list[SourceFile], list[SourceFile]] | None,
) -> MineSummary:
    source, target = sides
    keep = np.ones(len(candidates), dtype=bool)
    if request.threshold is not None:
        keep = candidates.score >= request.threshold
    chosen = (candidates.source_index[keep], candidates.target_index[keep])  # (pairs,) row numbers each
    header = ["source_id", "target_id", "margin"]
    rows: list[list[object]] = [
        [int(i), int(j), f"{score:.6f}"] for i, j, score in zip(*chosen, candidates.score[keep], strict=True)
    ]
    if inputs is not None:  # the texts of the kept pairs' rows only, read shard by shard
        texts = [
            texts_of_rows(side.folder, side.document, side_rows, found)
            for side, side_rows, found in zip(sides, chosen, inputs, strict=True)
        ]
        header += ["source", "target"]
        for row, i, j in zip(rows, chosen[0].tolist(), chosen[1].tolist(), strict=True):
            row += [texts[0][i], texts[1][j]]
    write_tsv(request.output, header, rows)
    warning = comparability_warning(candidates.score)
    seconds = time.perf_counter() - start
    record = {
        "source": str(request.source_dir),
        "target": str(request.target_dir),
        "k": request.k,
        "threshold": request.threshold,
        "search": "exact",
        "texts": request.texts,
        "rows": {"source": source.size, "target": target.size},
        "shards": {"source": len(source.shards), "target": len(target.shards)},
        "candidates": len(candidates),
        "pairs": len(rows),
        f"share_at_or_above_{TYPICAL_THRESHOLD}": round(share_above(candidates.score), 6),
        "comparability_warning": warning,
        "run": run | {"seconds": round(seconds, 3)},
    }
    path = request.output.with_suffix(".json")
    write_json_atomic(path, record, indent=1)
    return MineSummary(len(rows), len(candidates), warning, path, seconds)


def _prepare_work(work: Path, request: MineRequest, source: Side, target: Side) -> None:
    """``<output>.work/`` (locked by the caller), emptied but for its lock when it holds the tasks of
    another job (other inputs or shard contents, k or tiling)."""
    identity = {
        "source": [str(p) for p in source.shards],
        "target": [str(p) for p in target.shards],
        # the shards' hashes: a folder rewritten with the same row counts never reuses stale neighbours
        "source_sha256": [s["embeddings_sha256"] for s in source.document["shards"]],
        "target_sha256": [s["embeddings_sha256"] for s in target.document["shards"]],
        "source_job": source.job,
        "target_job": target.job,
        "k": request.k,
        "tile": CORPUS_TILE,
        "query_block": request.query_block,
    }
    marker = work / "job.json"
    if marker.exists() and read_json_record(marker) != identity:  # unreadable: another job's
        for path in work.iterdir():
            if path.name != LOCK_FILE:  # the lock stays ours while the folder is emptied
                shutil.rmtree(path) if path.is_dir() else path.unlink()
    write_json_atomic(marker, identity)


def _check(request: MineRequest) -> None:
    if request.output.suffix != ".tsv":
        raise InputError("output must be a .tsv file", request.output)
    if request.k < 1:
        raise InputError(f"--k must be at least 1, got {request.k}")
    check_options(request.engine, request.workers, request.ray_address, request.cpus_per_worker)
