"""Engines that run a shard mapper over tasks: local or Ray.

A shard mapper is a class built once per worker (:class:`ShardMapper`): the encoder of
:mod:`~paraxl.corpus.encode_job` (:class:`EncoderMapper`), the kNN searcher of :mod:`~paraxl.corpus.mine_job`
(``KnnMapper``) and the shard indexer of :mod:`~paraxl.corpus.index_job` (``ShardIndexer``); tasks and
results cross processes and Ray as JSON strings. A mapper whose ``__init__`` raises an InputError (an
unreadable shard or trained index) is not retried: its error comes back as every task's error result
(``error_result``), on every engine. ``local``, 1 worker: the mapper runs in this process. ``local``,
N workers: N processes (spawned, each building the mapper once, e.g. loading the model); a worker that dies
(killed, out of memory) costs its tasks a retry in a fresh pool, not the job. ``ray``: Ray Data
``map_batches`` over a dataset of tasks, with the mapper as a callable class on an actor pool
(``concurrency`` actors of ``num_cpus`` each; Ray restarts a dead actor and retries its task). Ray is
optional (``pip install 'paraxl[ray]'``) and imported only here, only when asked for.

Every engine calls ``on_result`` in the driver, once per task, in completion order, and stops handing
out tasks after the first result for which it returns True (an input error; tasks already running finish).
"""

from __future__ import annotations

import concurrent.futures as futures
import multiprocessing
import signal
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

import numpy as np

from paraxl.corpus.encode_job import EncodeSettings, ShardEncoder, ShardResult
from paraxl.corpus.plan import ShardTask
from paraxl.errors import InputError, ParaxlError
from paraxl.modeling.threads import physical_cores

ENGINES = ("local", "ray")
POOL_RETRIES = 2  # fresh pools after a local worker died, before the job gives up
RAY_INSTALL = "--engine ray needs Ray: pip install 'paraxl[ray]'"

ResultHandler = Callable[[ShardResult], None]
# a finished task's JSON result -> True to stop handing out tasks (it carries an input error)
JsonHandler = Callable[[str], bool]
# a corpus job's progress: (shards or tasks done so far, in all); called before the first and after each
ProgressHandler = Callable[[int, int], None]


class ShardMapper(Protocol):
    """Built once per worker from one picklable ``settings`` object; maps a JSON task to a JSON result."""

    def __init__(self, settings: Any) -> None: ...

    def map_json(self, task: str) -> str: ...

    @staticmethod
    def error_result(task: str, error: InputError) -> str:
        """The JSON result of ``task`` failed with ``error`` (the mapper could not be built)."""
        ...


class _Unbuilt:
    """Stands in for a mapper whose ``__init__`` raised an InputError: every task gets that error."""

    def __init__(self, mapper: type[ShardMapper], error: InputError) -> None:
        self.mapper, self.error = mapper, error

    def map_json(self, task: str) -> str:
        return self.mapper.error_result(task, self.error)


def build_mapper(mapper: type[ShardMapper], settings: Any) -> ShardMapper | _Unbuilt:
    """``mapper(settings)``, or its InputError as every task's result (a Ray actor or pool initializer
    that raises would be restarted, or break the pool, again and again for the same error)."""
    try:
        return mapper(settings)
    except InputError as exc:
        return _Unbuilt(mapper, exc)


def check_options(engine: str, workers: int, ray_address: str | None, cpus_per_worker: int | None) -> None:
    """The engine options, checked before any expensive work (hashing shards, loading, training).

    Raises:
        InputError: an unknown engine, workers or cpus per worker below 1, --ray-address without Ray.
        ParaxlError: --engine ray without Ray installed (one line saying how to install it).
    """
    if engine not in ENGINES:
        raise InputError(f"unknown engine {engine!r}; use one of {', '.join(ENGINES)}")
    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    if cpus_per_worker is not None and cpus_per_worker < 1:
        raise InputError(f"--cpus-per-worker must be at least 1, got {cpus_per_worker}")
    if engine == "local" and ray_address is not None:
        raise InputError("--ray-address applies to --engine ray only")
    if engine == "ray":
        import_ray()


def worker_cpus(engine: str, workers: int, cpus_per_worker: int | None) -> tuple[int, int]:
    """(CPUs per worker, threads a worker sets): the given CPUs, else this machine's cores / workers.

    One in-process worker (``local``, 1 worker) left to its own choice sets no thread limit (threads 0:
    the library's own, all cores), so the caller's process keeps its settings; N workers (or Ray actors)
    each set their share (N workers x all cores each would oversubscribe the machine N times over).
    """
    cpus = cpus_per_worker or max(1, physical_cores() // workers)
    in_process = engine == "local" and workers == 1
    return cpus, 0 if cpus_per_worker is None and in_process else cpus


class RayBatchMapper:
    """Ray Data's ``map_batches`` form of any :class:`ShardMapper`: a ``task`` column -> a ``result`` column."""

    def __init__(self, mapper: type[ShardMapper], settings: Any) -> None:
        self.mapper = build_mapper(mapper, settings)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        results = [self.mapper.map_json(str(task)) for task in batch["task"]]
        return {"result": np.array(results, dtype=object)}


class EncoderMapper:
    """:class:`ShardEncoder` as a :class:`ShardMapper` (JSON shard task -> JSON shard result)."""

    def __init__(self, settings: EncodeSettings) -> None:
        self.encoder = ShardEncoder(settings)

    def map_json(self, task: str) -> str:
        return self.encoder.encode_shard(ShardTask.from_json(task)).to_json()

    @staticmethod
    def error_result(task: str, error: InputError) -> str:
        index = ShardTask.from_json(task).index
        return ShardResult(index, error=error.reason, error_path=error.path, error_line=error.line).to_json()


def run_shards(
    engine: str,
    settings: EncodeSettings,
    tasks: Sequence[ShardTask],
    workers: int,
    on_result: ResultHandler,
    ray_address: str | None = None,
    cpus_per_worker: int | None = None,
) -> None:
    """Encode ``tasks`` on ``engine`` with ``workers`` workers of ``cpus_per_worker`` CPUs (Ray; default
    ``settings.threads``, at least 1); ``on_result`` per finished shard."""

    def handle(text: str) -> bool:
        result = ShardResult.from_json(text)
        on_result(result)
        return result.error is not None

    jobs = [task.to_json() for task in tasks]
    cpus = cpus_per_worker or max(settings.threads, 1)
    run_mapper(engine, EncoderMapper, settings, jobs, workers, handle, ray_address, cpus)


def run_mapper(
    engine: str,
    mapper: type[ShardMapper],
    settings: Any,
    tasks: Sequence[str],
    workers: int,
    on_result: JsonHandler,
    ray_address: str | None = None,
    cpus_per_worker: int = 1,
) -> None:
    """Run ``mapper(settings)`` over the JSON ``tasks`` on ``engine`` with ``workers`` workers."""
    if engine == "ray":
        run_ray(mapper, settings, tasks, workers, on_result, ray_address, cpus_per_worker)
    elif engine == "local":
        if ray_address is not None:
            raise InputError("--ray-address applies to --engine ray only")
        if workers == 1:
            run_in_process(mapper, settings, tasks, on_result)
        else:
            run_local_pool(mapper, settings, tasks, workers, on_result)
    else:
        raise InputError(f"unknown engine {engine!r}; use one of {', '.join(ENGINES)}")


def run_in_process(mapper: type[ShardMapper], settings: Any, tasks: Sequence[str], on_result: JsonHandler) -> None:
    if not tasks:
        return
    built = build_mapper(mapper, settings)
    for task in tasks:
        if on_result(built.map_json(task)):
            return


_WORKER_MAPPER: ShardMapper | _Unbuilt | None = None  # one per local worker process, built by its initializer


def _start_worker(mapper: type[ShardMapper], settings: Any) -> None:
    global _WORKER_MAPPER
    _WORKER_MAPPER = build_mapper(mapper, settings)


def _map_in_worker(task: str) -> str:
    assert _WORKER_MAPPER is not None, "the pool initializer builds the mapper"
    return _WORKER_MAPPER.map_json(task)


def run_local_pool(
    mapper: type[ShardMapper], settings: Any, tasks: Sequence[str], workers: int, on_result: JsonHandler
) -> None:
    """N spawned worker processes, at most 2 tasks each in flight (memory stays a few shards)."""
    remaining = list(tasks)
    for attempt in range(POOL_RETRIES + 1):
        if not remaining:
            return
        try:
            stopped = _run_pool(mapper, settings, remaining, workers, on_result)
        except BrokenProcessPool:
            if attempt == POOL_RETRIES:
                raise ParaxlError(f"local workers died {POOL_RETRIES + 1} times; see the log above") from None
            continue
        if stopped:
            return


def _run_pool(
    mapper: type[ShardMapper], settings: Any, remaining: list[str], workers: int, on_result: JsonHandler
) -> bool:
    """Run ``remaining`` (finished tasks are removed from it); True when an input error stopped the job."""
    context = multiprocessing.get_context("spawn")  # no fork of a process that holds torch threads
    with futures.ProcessPoolExecutor(
        workers, mp_context=context, initializer=_start_worker, initargs=(mapper, settings)
    ) as pool:
        queue = list(remaining)
        running: dict[futures.Future[str], str] = {}
        stopped = False
        while queue or running:
            while queue and not stopped and len(running) < 2 * workers:
                task = queue.pop(0)
                running[pool.submit(_map_in_worker, task)] = task
            if not running:
                break
            finished, _ = futures.wait(running, return_when=futures.FIRST_COMPLETED)
            for future in finished:
                task = running.pop(future)
                result = future.result()  # BrokenProcessPool when a worker died
                remaining.remove(task)
                stopped = on_result(result) or stopped
        return stopped


def run_ray(
    mapper: type[ShardMapper],
    settings: Any,
    tasks: Sequence[str],
    workers: int,
    on_result: JsonHandler,
    address: str | None,
    cpus_per_worker: int = 1,
) -> None:
    """Ray Data: one block per task, ``map_batches`` on an actor pool of ``workers`` mappers."""
    ray = import_ray()
    if not tasks:
        return
    started = not ray.is_initialized()
    # ray.init installs its own SIGTERM/SIGINT handlers in this process and leaves them after shutdown;
    # the caller's (a service's drain on SIGTERM, Ctrl-C) come back when the job ends
    handlers = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}
    if started:
        # address None starts a local Ray on this machine; "auto" or HOST:PORT joins a running cluster
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        dataset = _ray_dataset(ray, mapper, settings, tasks, workers, cpus_per_worker)
        for row in dataset.iter_rows():
            if on_result(str(row["result"])):
                break
    finally:
        if started:
            ray.shutdown()
        for number, handler in handlers.items():
            if handler is not None:
                signal.signal(number, handler)


def _ray_dataset(
    ray: Any, mapper: type[ShardMapper], settings: Any, tasks: Sequence[str], workers: int, cpus: int
) -> Any:
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # paraxl draws one bar over shards
    context.print_on_execution_start = False
    items = [{"task": task} for task in tasks]
    dataset = ray.data.from_items(items, override_num_blocks=len(items))
    return dataset.map_batches(
        RayBatchMapper,
        fn_constructor_kwargs={"mapper": mapper, "settings": settings},
        batch_size=1,
        batch_format="numpy",
        # a dead actor is restarted and its task retried: Ray Data's actor pools default to
        # max_restarts=-1 and max_task_retries=-1 (tests/test_corpus_ray.py kills one mid-job)
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=cpus,
    )


def import_ray() -> Any:
    """The ``ray`` module, or one line saying how to install it."""
    try:
        import ray
        import ray.data
    except ModuleNotFoundError:
        raise ParaxlError(RAY_INSTALL) from None
    return ray
