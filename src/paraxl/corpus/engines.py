"""Engines that run the shard mapper (:class:`ShardEncoder`) over shards: local or Ray.

``local``, 1 worker: the mapper runs in this process. ``local``, N workers: N processes (spawned, each
loading the model once, each with its share of the cores as torch threads); a worker that dies (killed,
out of memory) costs its shards a retry in a fresh pool, not the job. ``ray``: Ray Data ``map_batches``
over a dataset of shard tasks, with the mapper as a callable class on an actor pool (``concurrency``
actors of ``num_cpus`` each; Ray restarts a dead actor and retries its shard). Ray is optional
(``pip install 'paraxl[ray]'``) and imported only here, only when asked for.

Every engine calls ``on_result`` in the driver, once per shard, in completion order, and stops handing
out shards after the first result that carries an input error (shards already running finish).
"""

from __future__ import annotations

import concurrent.futures as futures
import multiprocessing
import signal
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from paraxl.corpus.encode_job import EncodeSettings, ShardEncoder, ShardResult
from paraxl.corpus.plan import ShardTask
from paraxl.errors import InputError, ParaxlError

ENGINES = ("local", "ray")
POOL_RETRIES = 2  # fresh pools after a local worker died, before the job gives up
RAY_INSTALL = "--engine ray needs Ray: pip install 'paraxl[ray]'"

ResultHandler = Callable[[ShardResult], None]


def run_shards(
    engine: str,
    settings: EncodeSettings,
    tasks: Sequence[ShardTask],
    workers: int,
    on_result: ResultHandler,
    ray_address: str | None = None,
) -> None:
    """Encode ``tasks`` on ``engine`` with ``workers`` workers; ``on_result`` per finished shard."""
    if engine == "ray":
        run_ray(settings, tasks, workers, on_result, ray_address)
    elif engine == "local":
        if ray_address is not None:
            raise InputError("--ray-address applies to --engine ray only")
        if workers == 1:
            run_in_process(settings, tasks, on_result)
        else:
            run_local_pool(settings, tasks, workers, on_result)
    else:
        raise InputError(f"unknown engine {engine!r}; use one of {', '.join(ENGINES)}")


def run_in_process(settings: EncodeSettings, tasks: Sequence[ShardTask], on_result: ResultHandler) -> None:
    if not tasks:
        return
    mapper = ShardEncoder(settings)
    for task in tasks:
        result = mapper.encode_shard(task)
        on_result(result)
        if result.error is not None:
            return


_WORKER_MAPPER: ShardEncoder | None = None  # one per local worker process, built by its initializer


def _start_worker(settings: EncodeSettings) -> None:
    global _WORKER_MAPPER
    _WORKER_MAPPER = ShardEncoder(settings)


def _encode_in_worker(task: ShardTask) -> ShardResult:
    assert _WORKER_MAPPER is not None, "the pool initializer builds the mapper"
    return _WORKER_MAPPER.encode_shard(task)


def run_local_pool(
    settings: EncodeSettings, tasks: Sequence[ShardTask], workers: int, on_result: ResultHandler
) -> None:
    """N spawned worker processes, at most 2 shards each in flight (memory stays a few shards)."""
    remaining = list(tasks)
    for attempt in range(POOL_RETRIES + 1):
        if not remaining:
            return
        try:
            stopped = _run_pool(settings, remaining, workers, on_result)
        except BrokenProcessPool:
            if attempt == POOL_RETRIES:
                raise ParaxlError(f"local workers died {POOL_RETRIES + 1} times; see the log above") from None
            continue
        if stopped:
            return


def _run_pool(settings: EncodeSettings, remaining: list[ShardTask], workers: int, on_result: ResultHandler) -> bool:
    """Run ``remaining`` (finished tasks are removed from it); True when an input error stopped the job."""
    context = multiprocessing.get_context("spawn")  # no fork of a process that holds torch threads
    with futures.ProcessPoolExecutor(
        workers, mp_context=context, initializer=_start_worker, initargs=(settings,)
    ) as pool:
        queue = list(remaining)
        running: dict[futures.Future[ShardResult], ShardTask] = {}
        stopped = False
        while queue or running:
            while queue and not stopped and len(running) < 2 * workers:
                task = queue.pop(0)
                running[pool.submit(_encode_in_worker, task)] = task
            if not running:
                break
            finished, _ = futures.wait(running, return_when=futures.FIRST_COMPLETED)
            for future in finished:
                task = running.pop(future)
                result = future.result()  # BrokenProcessPool when a worker died
                remaining.remove(task)
                on_result(result)
                stopped = stopped or result.error is not None
        return stopped


def run_ray(
    settings: EncodeSettings,
    tasks: Sequence[ShardTask],
    workers: int,
    on_result: ResultHandler,
    address: str | None,
) -> None:
    """Ray Data: one block per shard, ``map_batches`` on an actor pool of ``workers`` mappers."""
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
        dataset = _ray_dataset(ray, settings, tasks, workers)
        for row in dataset.iter_rows():
            result = ShardResult.from_json(str(row["result"]))
            on_result(result)
            if result.error is not None:
                break
    finally:
        if started:
            ray.shutdown()
        for number, handler in handlers.items():
            if handler is not None:
                signal.signal(number, handler)


def _ray_dataset(ray: Any, settings: EncodeSettings, tasks: Sequence[ShardTask], workers: int) -> Any:
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # paraxl draws one bar over shards
    context.print_on_execution_start = False
    items = [{"task": task.to_json()} for task in tasks]
    dataset = ray.data.from_items(items, override_num_blocks=len(items))
    return dataset.map_batches(
        ShardEncoder,
        fn_constructor_kwargs={"settings": settings},
        batch_size=1,
        batch_format="numpy",
        # a dead actor is restarted and its shard retried: Ray Data's actor pools default to
        # max_restarts=-1 and max_task_retries=-1 (tests/test_corpus_ray.py kills one mid-job)
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=max(settings.threads, 1),
    )


def import_ray() -> Any:
    """The ``ray`` module, or one line saying how to install it."""
    try:
        import ray
        import ray.data
    except ModuleNotFoundError:
        raise ParaxlError(RAY_INSTALL) from None
    return ray
