"""Streaming, sharded, resumable corpus encoding: inputs -> embedding shards + ``manifest.json``.

Example::

    request = CorpusRequest(inputs=("corpus/",), output_dir=Path("emb"), model="bundled:multilingual-e5-small")
    summary = encode_corpus(request)  # emb/shard-000000.npy, emb/shard-000000.ids.npy, ..., emb/manifest.json

Running the same request again skips the finished shards (a killed run resumes); a request whose model,
inputs, prompt, dtype or shard size differ from the folder's run is refused.
"""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paraxl.corpus.encode_job import DTYPES, EncodeSettings, ShardResult
from paraxl.corpus.engines import ProgressHandler, check_options, run_shards, worker_cpus
from paraxl.corpus.manifest import MANIFEST, CorpusManifest
from paraxl.corpus.plan import ShardTask, plan_shards
from paraxl.corpus.sources import resolve_inputs, scan_source
from paraxl.errors import InputError
from paraxl.io.locks import folder_lock
from paraxl.loading.backends import onnx_encoder_fingerprint
from paraxl.loading.model import resolve_model
from paraxl.modeling.st_layout import read_settings

DEFAULT_SHARD_SIZE = 10_000


@dataclass(frozen=True)
class CorpusRequest:
    """One encoding job. ``cpus_per_worker`` None: this machine's physical cores shared among the workers."""

    inputs: tuple[str, ...]
    output_dir: Path
    model: str
    backend: str = "torch"
    fmt: str | None = None
    column: str | None = None
    prompt_name: str | None = None
    shard_size: int = DEFAULT_SHARD_SIZE
    dtype: str = "float32"
    batch_size: int = 32
    engine: str = "local"
    workers: int = 1
    ray_address: str | None = None
    cpus_per_worker: int | None = None


@dataclass(frozen=True)
class CorpusSummary:
    manifest: Path
    shards: int
    skipped: int  # finished by an earlier run
    encoded: int
    rows_encoded: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows_encoded / max(self.seconds, 1e-9)


def encode_corpus(request: CorpusRequest, progress: ProgressHandler | None = None) -> CorpusSummary:
    """Encode ``request``'s corpus shard by shard; see the module docstring.

    Raises:
        InputError: bad options, unreadable inputs, a folder of another job, or a malformed row (the
            first one met; shards finished before it stay finished and recorded).
    """
    _check(request)
    resolved = resolve_model(request.model, request.backend)
    prompt = read_settings(resolved.folder, 512).prompt_prefix(request.prompt_name)
    sources = [
        scan_source(path, request.fmt, request.column, request.shard_size) for path in resolve_inputs(request.inputs)
    ]
    tasks = plan_shards(sources, request.shard_size)
    # ONNX: the graph decides the vectors too (a re-export or int8 re-quantisation of the same weights
    # differs), so its fingerprint joins the job's identity (a bundled model is exported here, once, before
    # the workers start; the graph is hashed, not loaded: the workers load it)
    graph = None if request.backend == "torch" else onnx_encoder_fingerprint(resolved.folder, request.backend)
    job = {
        "model": {"weights_fingerprint": resolved.weights_fingerprint, "backend": request.backend, "graph": graph},
        "prompt": {"name": request.prompt_name, "text": prompt},
        "dtype": request.dtype,
        "shard_size": request.shard_size,
        "inputs": [source.identity() for source in sources],
    }
    request.output_dir.mkdir(parents=True, exist_ok=True)
    # one writer per folder, from the manifest check to the last save: two runs would write the same shards
    with folder_lock(request.output_dir, "corpus embeddings folder"):
        manifest = CorpusManifest.open(request.output_dir, job, tasks, request.model)
        return _encode_pending(request, manifest, tasks, resolved.weights_fingerprint, graph, progress)


def _encode_pending(
    request: CorpusRequest,
    manifest: CorpusManifest,
    tasks: list[ShardTask],
    weights_fingerprint: str,
    graph: str | None,
    progress: ProgressHandler | None,
) -> CorpusSummary:
    done = manifest.done()
    pending = [task for task in tasks if task.index not in done]
    cpus, threads = worker_cpus(request.engine, request.workers, request.cpus_per_worker)
    settings = EncodeSettings(
        request.model,
        request.backend,
        weights_fingerprint,
        request.prompt_name,
        request.batch_size,
        request.dtype,
        str(request.output_dir),
        threads,
        graph,
    )
    return _run(request, manifest, settings, cpus, pending, len(tasks), progress)


def _run(
    request: CorpusRequest,
    manifest: CorpusManifest,
    settings: EncodeSettings,
    cpus: int,
    pending: list[ShardTask],
    total: int,
    progress: ProgressHandler | None,
) -> CorpusSummary:
    skipped = total - len(pending)
    errors: list[ShardResult] = []
    encoded: list[ShardResult] = []

    def on_result(result: ShardResult) -> None:
        if result.error is not None:
            errors.append(result)
            return
        encoded.append(result)
        manifest.record(result)
        if progress is not None:
            progress(skipped + len(encoded), total)

    if progress is not None:
        progress(skipped, total)
    began, start = datetime.datetime.now(datetime.UTC), time.perf_counter()
    try:
        run_shards(request.engine, settings, pending, request.workers, on_result, request.ray_address, cpus)
    finally:
        seconds = time.perf_counter() - start
        manifest.add_run(_run_record(request, cpus, began, seconds, encoded, skipped))
        manifest.save()
    if errors:
        raise min(errors, key=lambda result: result.index).input_error()
    rows = sum(result.rows for result in encoded)
    return CorpusSummary(request.output_dir / MANIFEST, total, skipped, len(encoded), rows, seconds)


def _run_record(
    request: CorpusRequest,
    cpus: int,
    began: datetime.datetime,
    seconds: float,
    encoded: list[ShardResult],
    skipped: int,
) -> dict[str, Any]:
    rows = sum(result.rows for result in encoded)
    return {
        "engine": request.engine,
        "workers": request.workers,
        "cpus_per_worker": cpus,
        "ray_address": request.ray_address,
        "batch_size": request.batch_size,
        "started": began.isoformat(timespec="seconds"),
        "seconds": round(seconds, 3),
        "shards_encoded": len(encoded),
        "shards_skipped": skipped,
        "rows_encoded": rows,
        "rows_per_second": round(rows / max(seconds, 1e-9), 2),
    }


def _check(request: CorpusRequest) -> None:
    if request.dtype not in DTYPES:
        raise InputError(f"unknown dtype {request.dtype!r}; use one of {', '.join(DTYPES)}")
    for name in ("shard_size", "batch_size"):
        if getattr(request, name) < 1:
            raise InputError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(request, name)}")
    # before any scanning or model loading: bad engine options, or one line on how to install Ray
    check_options(request.engine, request.workers, request.ray_address, request.cpus_per_worker)
