"""Locust load test of ``paraxl serve``: the same request mix and plan as ``benchmarks/bench_service.py``.

Headless, bounded in count (the plan's ``PARAXL_BENCH_REQUESTS`` requests, then Locust quits) and in
time (``--run-time``); loopback only (``--host``):

    locust -f benchmarks/locustfile.py --headless -u 32 -r 32 --run-time 300s --stop-timeout 120 \\
        --host http://127.0.0.1:PORT

``bench_service.py --load-generator locust`` starts the server and runs exactly this. Settings come
from the environment (defaults in brackets): ``PARAXL_BENCH_DATA_DIR`` [../shared/data],
``PARAXL_BENCH_REQUESTS`` [10000], ``PARAXL_BENCH_SEED`` [0], ``PARAXL_BENCH_MIX`` (JSON; [the full
mix]), ``PARAXL_BENCH_MAX_K`` [100], ``PARAXL_BENCH_OFFSET`` [0]: the plan position to start at (the
overload run's phases take consecutive stretches), ``PARAXL_BENCH_RETRY_AFTER`` [ignore]: ``honor``
makes a user that got a 429 wait its ``Retry-After`` before its next request, ``PARAXL_BENCH_OUT``: a
JSON file for every request's outcome (endpoint, status, seconds, sentences, plan index, a 429's
reason) and the wall time, which the bench summarises with the same code as its own client's. Users
are ``FastHttpUser`` (geventhttpclient, Locust's cheapest client in CPU) with no wait between
requests: each takes the plan's next request.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import gevent
from locust import FastHttpUser, constant, events, task
from locust.env import Environment

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_service

from paraxl.serving.server import freeze_loaded_objects

DATA_DIR = Path(os.environ.get("PARAXL_BENCH_DATA_DIR", "../shared/data"))
REQUESTS = int(os.environ.get("PARAXL_BENCH_REQUESTS", "10000"))
SEED = int(os.environ.get("PARAXL_BENCH_SEED", "0"))
MIX: dict[str, float] = json.loads(os.environ.get("PARAXL_BENCH_MIX", "null")) or dict(bench_service.MIX)
MAX_K = int(os.environ.get("PARAXL_BENCH_MAX_K", "100"))
OUT = os.environ.get("PARAXL_BENCH_OUT")
OFFSET = int(os.environ.get("PARAXL_BENCH_OFFSET", "0"))
HONOR_RETRY_AFTER = os.environ.get("PARAXL_BENCH_RETRY_AFTER", "ignore") == "honor"

PLAN = bench_service.plan_requests(MIX, bench_service.load_pairs(DATA_DIR, per_language=400)[0], REQUESTS, SEED, MAX_K)
freeze_loaded_objects()  # the plan out of full GC passes: their pauses are not the server's
state: dict[str, Any] = {"next": OFFSET, "outcomes": [], "start": None, "end": None}


@events.request.add_listener
def _record(
    request_type: str, name: str, response_time: float, response: Any, context: dict[str, Any], exception: Any, **_: Any
) -> None:
    """Every request as bench_service's ``Outcome``: Locust's own timing, the status or the exception."""
    status = str(response.status_code) if response is not None and response.status_code else ""
    if exception is not None and not status.isdigit():
        status = f"exception:{type(exception).__name__}"
    refusal = bench_service.refusal_reason(response.text or "") if status == "429" else ""
    row = {
        "endpoint": name,
        "status": status,
        "seconds": response_time / 1000,
        "refusal": refusal,
        "sent_at": time.perf_counter() - response_time / 1000 - state["start"],  # seconds from the test's start
        **context,
    }
    state["outcomes"].append(row)
    state["end"] = time.perf_counter()


@events.test_start.add_listener
def _started(environment: Environment, **_: Any) -> None:
    state["start"] = time.perf_counter()


@events.quitting.add_listener
def _write(environment: Environment, **_: Any) -> None:
    if OUT and state["start"] is not None:
        wall = (state["end"] or time.perf_counter()) - state["start"]
        Path(OUT).write_text(json.dumps({"wall_seconds": wall, "outcomes": state["outcomes"]}))


class ServiceUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def next_request(self) -> None:
        index = state["next"]
        if index >= len(PLAN):  # the plan is done: stop the whole test (in-flight requests finish)
            if self.environment.runner is not None:
                self.environment.runner.quit()
            return
        state["next"] = index + 1
        planned = PLAN[index]
        context = {"sentences": planned.sentences, "index": index}
        # a non-2xx is a "failure" in Locust's own report; the bench counts statuses itself
        response = self.client.request(
            planned.method, planned.path, json=planned.body, name=planned.endpoint, context=context
        )
        if HONOR_RETRY_AFTER and response.status_code == 429:
            gevent.sleep(float(response.headers.get("Retry-After") or 1))
