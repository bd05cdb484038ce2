"""Load test of ``paraxl serve``: throughput and latency under concurrent mixed traffic, against offline
``encode`` on the same texts; a 4x overload run; malformed requests; the same traffic from Locust.

Usage:
    python benchmarks/bench_service.py --data-dir ../shared/data [--model bundled:multilingual-e5-small]
        [--backend torch] [--requests 10000] [--concurrency 32] [--max-seconds 600]
        [--index build|none] [--micro-batch both|on|off] [--malformed 300] [--offline on|off]
        [--load-generator httpx|locust] [--overload] [--tag NAME]

Writes ``benchmarks/results/service[-TAG].json`` and ``.md``.

The server runs in its own process (``python -m paraxl.cli.main serve`` on 127.0.0.1, a free port),
started by this script; the clients are asyncio tasks, each with its own ``httpx.AsyncClient`` here
(``--load-generator locust``: ``locust -f benchmarks/locustfile.py --headless`` in a child process,
the same requests). On a 2-core machine client and server share the cores, so the rates are a lower
bound for the server; the load generator's CPU seconds are reported next to the server's.
Traffic: 40 % /similarity, 25 % /embed, 15 % /paraphrase, 15 % /search, 5 % /health, each request
1-8 short Tatoeba sentences (pairs: a sentence and its English translation), planned up front from
the seed (:func:`plan_requests`), so every run and both load generators send the same requests in the
same order. /search runs against an index of 2,000 Tatoeba sentences that ``paraxl index build``
makes first (``--index none`` to skip: its share goes to the other endpoints). ``--micro-batch both``
runs the load test twice, with and without the server merging queued requests into one forward pass.

Offline comparison (``--offline on``, the issue's >= 85 % bar): once the server has stopped, this
process loads the same model on the same backend and encodes the texts of every request answered 200
(each with its prompt: /search's queries with the index's, the rest with the model's default) with
the encoder's own ``encode`` and the server's batch size, alone on the machine. Two policies:
``one call`` per prompt, what ``paraxl encode`` does with these texts (the whole set sorted by length
into batches: the best the encoder can do, the bar's denominator) and ``as merged``: the same texts
in arrival order, in groups of the service's mean merged batch (read from its /metrics), up to
``--replay-texts``: what the service's own batching allows, so the gap between the two ratios is
what batch shaping costs, and the rest is the HTTP layer's.

``--overload``: phase A ``--concurrency`` clients, phase B 4x as many, phase C ``--concurrency`` again,
``--phase-seconds`` each, against a server with a small queue (``--overload-max-queue`` texts,
``--overload-max-wait`` s), from this process's httpx clients or (``--load-generator locust``) one
Locust run per phase on the same plan. Clients wait ``Retry-After`` after a 429 (``--retry-after honor``,
as well-behaved clients do) or retry at once (``ignore``). Per phase: throughput, p99 of the 429s (bar
< 50 ms), p99 of the requests served (bar: the queue's wait plus one batch), 5xx (bar 0), and
recovery: phase C's sentences/s over phase A's.
The malformed run sends bad JSON, wrong types, empty texts, oversized batches, texts and bodies,
unknown fields, bad k, unknown routes and methods: every answer must be 4xx.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import resource
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from paraxl.serving.server import freeze_loaded_objects

RESULTS = Path(__file__).resolve().parent / "results"
MIX = {"/similarity": 0.40, "/embed": 0.25, "/paraphrase": 0.15, "/search": 0.15, "/health": 0.05}
TATOEBA_LANGUAGES = ("deu", "fra", "spa", "por", "ita", "rus", "jpn", "cmn", "ara", "tur", "pol", "kor")
FALLBACK_PAIRS = [
    ("Die Katze schläft auf dem Sofa.", "The cat is sleeping on the sofa."),
    ("Le chat dort sur le canapé.", "The cat is sleeping on the sofa."),
    ("Ich habe heute keine Zeit.", "I don't have time today."),
    ("¿Dónde está la estación de tren?", "Where is the train station?"),
    ("Il pleut depuis ce matin.", "It has been raining since this morning."),
    ("Eu gosto de ler livros.", "I like reading books."),
    ("明日は雨が降るでしょう。", "It will probably rain tomorrow."),
    ("我们明天去公园。", "We are going to the park tomorrow."),
    ("Он очень устал после работы.", "He is very tired after work."),
    ("Bu kitabı çok beğendim.", "I liked this book a lot."),
]


@dataclass(frozen=True)
class Outcome:
    endpoint: str
    status: str  # "200", "422", ... or "exception:Name"
    seconds: float
    sentences: int
    index: int = -1  # the planned request's position (plan_requests), -1: not from a plan
    refusal: str = ""  # a 429's reason: "deadline" (waited max_wait in the queue) or "full" (refused at once)
    sent_at: float = math.nan  # seconds from the load's start to this request's sending


@dataclass(frozen=True)
class Planned:
    """One request of the mix: what is sent, and the texts the server encodes for it (and with which prompt)."""

    endpoint: str
    method: str
    path: str
    body: dict[str, Any] | None
    texts: tuple[str, ...]

    @property
    def sentences(self) -> int:
        return len(self.texts)


def load_pairs(data_dir: Path, per_language: int) -> tuple[list[tuple[str, str]], str]:
    """(sentence, English translation) pairs from Tatoeba, or a small built-in list if the data is absent."""
    pairs: list[tuple[str, str]] = []
    for lang in TATOEBA_LANGUAGES:
        base = data_dir / "tatoeba" / "v1" / f"tatoeba.{lang}-eng"
        source, english = Path(f"{base}.{lang}"), Path(f"{base}.eng")
        if not (source.is_file() and english.is_file()):
            continue
        first = source.read_text(encoding="utf-8").splitlines()[:per_language]
        second = english.read_text(encoding="utf-8").splitlines()[:per_language]
        pairs += [(a.strip(), b.strip()) for a, b in zip(first, second, strict=True) if a.strip() and b.strip()]
    if pairs:
        return pairs, f"Tatoeba v1 ({len(pairs)} pairs, {len(TATOEBA_LANGUAGES)} languages with English)"
    return FALLBACK_PAIRS, f"built-in list ({len(FALLBACK_PAIRS)} pairs; no Tatoeba under {data_dir})"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def paraxl_cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "paraxl.cli.main", *args]


def build_index(sentences: list[str], model: str, backend: str, folder: Path) -> dict[str, Any]:
    """``paraxl index build`` over ``sentences``; the outcome (seconds, or why it failed)."""
    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(sentences) + "\n", encoding="utf-8")
    start = time.perf_counter()
    done = subprocess.run(
        paraxl_cli("index", "build", str(corpus), "-o", str(folder / "index"), "-m", model, "--backend", backend),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        return {"built": False, "why": f"paraxl index build failed ({done.returncode}): {last}"}
    return {"built": True, "sentences": len(sentences), "seconds": time.perf_counter() - start}


def needs_threshold(model: str) -> bool:
    """True when the model folder has no calibration, so /paraphrase needs ``--threshold``."""
    try:
        from paraxl.loading.calibration_file import load_calibration
        from paraxl.loading.specs import resolve_model_folder
    except ImportError:
        return True
    return load_calibration(resolve_model_folder(model)) is None


class Server:
    """``paraxl serve`` in a child process; its log goes to a temporary file we scan for tracebacks."""

    def __init__(self, args: list[str], startup_timeout: float, cpus: set[int] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix="paraxl-serve-", suffix=".log", delete=False)  # noqa: SIM115
        command = paraxl_cli("serve", *args, "--port", str(self.port), "--log-level", "warning")
        self.command = " ".join(command[2:])
        start = time.perf_counter()
        # cpus: the server process (and every thread it starts) runs only there, so a load generator pinned
        # to the other cores cannot take the server's CPU time (what starved 429s on 2 shared cores)
        pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, preexec_fn=pin)
        while True:
            if self.process.poll() is not None:
                raise SystemExit(f"server exited with {self.process.returncode}:\n{self.log_text()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.perf_counter() - start > startup_timeout:
                self.stop()
                raise SystemExit(f"server did not answer /health within {startup_timeout} s")
            time.sleep(0.25)
        self.startup_seconds = time.perf_counter() - start

    def log_text(self) -> str:
        return Path(self.log.name).read_text(encoding="utf-8", errors="replace")

    def stop(self) -> str:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        text = self.log_text()
        Path(self.log.name).unlink(missing_ok=True)
        return text


def make_request(endpoint: str, rng: random.Random, pairs: list[tuple[str, str]], max_k: int) -> Planned:
    """One request of the mix for ``endpoint``: 1-8 sentences (pairs: half as many pairs)."""
    n = rng.randint(1, 8)
    if endpoint == "/health":
        return Planned(endpoint, "GET", endpoint, None, ())
    if endpoint in ("/similarity", "/paraphrase"):
        chosen = [list(rng.choice(pairs)) for _ in range(max(1, n // 2))]
        texts = tuple(a for a, _ in chosen) + tuple(b for _, b in chosen)  # the service encodes firsts, then seconds
        return Planned(endpoint, "POST", endpoint, {"pairs": chosen}, texts)
    texts = tuple(rng.choice(rng.choice(pairs)) for _ in range(n))
    if endpoint == "/embed":
        return Planned(endpoint, "POST", endpoint, {"texts": list(texts)}, texts)
    return Planned(endpoint, "POST", endpoint, {"queries": list(texts), "k": min(10, max_k)}, texts)


def plan_requests(
    mix: dict[str, float], pairs: list[tuple[str, str]], count: int, seed: int, max_k: int
) -> list[Planned]:
    """``count`` requests of ``mix``, the same for a seed whatever the timing or the load generator."""
    rng = random.Random(seed)
    endpoints, weights = list(mix), list(mix.values())
    return [make_request(rng.choices(endpoints, weights)[0], rng, pairs, max_k) for _ in range(count)]


async def load_test(
    url: str, plan: list[Planned], concurrency: int, max_seconds: float, *, retry_after: str = "ignore"
) -> tuple[list[Outcome], float]:
    """``concurrency`` clients send ``plan`` in order (each the next request) until done or ``max_seconds``.

    Each client is its own ``httpx.AsyncClient`` with one connection, like independent users: one
    client shared by all (one connection pool) made requests wait in the pool for seconds when many
    connections opened at once, and that wait was counted as the server's latency. The clients are
    built before the clock starts, with one shared SSL context: building 128 of them (an SSL context
    each) took ~2.6 s of the generator's CPU, during which no request was sent or read.
    ``retry_after="honor"``: a client that got a 429 waits its ``Retry-After`` (bounded by the time left).
    """
    outcomes: list[Outcome] = []
    next_index = 0
    tls = ssl.create_default_context()  # never used on http://, but httpx builds one per client otherwise
    clients = [
        httpx.AsyncClient(base_url=url, limits=httpx.Limits(max_connections=1), timeout=120, verify=tls)
        for _ in range(concurrency)
    ]

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal next_index
        while next_index < len(plan) and time.perf_counter() < deadline:
            index, next_index = next_index, next_index + 1
            request = plan[index]
            start = time.perf_counter()
            wait, refusal = 0.0, ""
            try:
                response = await http.request(request.method, request.path, json=request.body)
                status = str(response.status_code)
                if status == "429":
                    refusal = refusal_reason(response.text)
                    wait = float(response.headers.get("Retry-After", "1")) if retry_after == "honor" else 0.0
            except httpx.HTTPError as exc:
                status = f"exception:{type(exc).__name__}"
            seconds = time.perf_counter() - start
            sent_at = start - began
            outcomes.append(Outcome(request.endpoint, status, seconds, request.sentences, index, refusal, sent_at))
            if wait:
                await asyncio.sleep(min(wait, max(0.0, deadline - time.perf_counter())))

    try:
        began = time.perf_counter()
        deadline = began + max_seconds
        await asyncio.gather(*(client(http) for http in clients))
        wall = time.perf_counter() - began
    finally:
        await asyncio.gather(*(http.aclose() for http in clients))
    return outcomes, wall


def refusal_reason(text: str) -> str:
    """A 429 body's reason, by the queue's words: ``deadline`` (it waited max_wait) or ``full`` (refused at once)."""
    return "deadline" if "waited" in text else "full"


def latency(values: list[float]) -> dict[str, float]:
    """p50, p99 and mean in ms (NaN for no values)."""
    if not values:
        return {"p50_ms": math.nan, "p99_ms": math.nan, "mean_ms": math.nan}
    ms = np.array(values) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)), "mean_ms": float(ms.mean())}


def summarise(outcomes: list[Outcome], wall: float, planned: int) -> dict[str, Any]:
    by_endpoint = {}
    for endpoint in sorted({o.endpoint for o in outcomes}):
        mine = [o for o in outcomes if o.endpoint == endpoint]
        by_endpoint[endpoint] = {
            "requests": len(mine),
            **latency([o.seconds for o in mine]),
            "status": dict(Counter(o.status for o in mine)),
        }
    ok = [o for o in outcomes if o.status == "200"]
    statuses = Counter(o.status for o in outcomes)
    return {
        "planned": planned,
        "done": len(outcomes),
        "completed_200": len(ok),
        "stopped_early": len(outcomes) < planned,
        "wall_seconds": wall,
        "requests_per_second": len(outcomes) / wall,
        "served_per_second": len(ok) / wall,
        "sentences": sum(o.sentences for o in ok),
        "sentences_per_second": sum(o.sentences for o in ok) / wall,
        **{f"overall_{key}": value for key, value in latency([o.seconds for o in outcomes]).items()},
        **{f"served_{key}": value for key, value in latency([o.seconds for o in ok]).items()},
        "refused_429": statuses.get("429", 0),
        "refused_by_reason": {
            reason or "unknown": {"count": len(times), **latency(times)}
            for reason in sorted({o.refusal for o in outcomes if o.status == "429"})
            for times in [[o.seconds for o in outcomes if o.status == "429" and o.refusal == reason]]
        },
        **{
            f"refused_{key}": value
            for key, value in latency([o.seconds for o in outcomes if o.status == "429"]).items()
        },
        "status": dict(statuses),
        "server_errors_5xx": sum(n for s, n in statuses.items() if s.startswith("5")),
        "client_exceptions": sum(n for s, n in statuses.items() if s.startswith("exception")),
        "endpoints": by_endpoint,
    }


# ---------------------------------------------------------------- what the server did (CPU, /metrics)


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (fields 14, 15)


def own_cpu_seconds(children: bool = False) -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


ENCODER_METRICS = {
    "batches": "paraxl_batch_duration_seconds_count",
    "batch_seconds": "paraxl_batch_duration_seconds_sum",
    "sentences": "paraxl_sentences_encoded_total",
}


def encoder_metrics(url: str) -> dict[str, float]:
    """The server's forward-pass counters from /metrics (empty if it has none)."""
    try:
        text = httpx.get(f"{url}/metrics", timeout=10).text
    except httpx.HTTPError:
        return {}
    values = dict(line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return {key: float(values[name]) for key, name in ENCODER_METRICS.items() if name in values}


def encoder_share(before: dict[str, float], after: dict[str, float], wall: float) -> dict[str, float]:
    """How busy the server's encoder was in a run: the share of wall time in forward passes, its rate, batch size."""
    delta = {key: after.get(key, 0.0) - before.get(key, 0.0) for key in ENCODER_METRICS}
    if not delta["batches"] or not delta["batch_seconds"]:
        return {}
    return {
        "busy_share": delta["batch_seconds"] / wall,
        "texts_per_second_while_encoding": delta["sentences"] / delta["batch_seconds"],
        "mean_merged_batch": delta["sentences"] / delta["batches"],
        "batches": delta["batches"],
    }


class Measured:
    """CPU seconds of the server, this process and finished children over a block; wall seconds."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.start = (process_cpu_seconds(server.process.pid), own_cpu_seconds(), own_cpu_seconds(children=True))
        self.metrics = encoder_metrics(server.url)

    def result(self, wall: float) -> dict[str, Any]:
        server_cpu = process_cpu_seconds(self.server.process.pid)
        start_server, start_self, start_children = self.start
        return {
            "server_cpu_seconds": None if server_cpu is None or start_server is None else server_cpu - start_server,
            "generator_cpu_seconds": own_cpu_seconds() - start_self + own_cpu_seconds(children=True) - start_children,
            "cores": os.cpu_count(),
            "encoder": encoder_share(self.metrics, encoder_metrics(self.server.url), wall),
        }


def malformed_requests(limits: dict[str, int]) -> dict[str, Callable[[], dict[str, Any]]]:
    """Named builders of bad requests (httpx.request keyword arguments)."""
    as_json = {"content-type": "application/json"}
    too_long = "a" * (limits["max_text_chars"] + 1)
    oversized = json.dumps({"texts": ["a" * (limits["max_body_bytes"] + 10)]})
    return {
        "truncated JSON": lambda: {"method": "POST", "url": "/embed", "content": b'{"texts": ["a"', "headers": as_json},
        "not JSON": lambda: {"method": "POST", "url": "/similarity", "content": b"hello", "headers": as_json},
        "no content-type": lambda: {"method": "POST", "url": "/embed", "content": b'{"texts": ["a"]}'},
        "empty body": lambda: {"method": "POST", "url": "/embed", "headers": as_json},
        "empty texts": lambda: {"method": "POST", "url": "/embed", "json": {"texts": []}},
        "blank text": lambda: {"method": "POST", "url": "/embed", "json": {"texts": ["   "]}},
        "numbers for texts": lambda: {"method": "POST", "url": "/embed", "json": {"texts": [1, 2]}},
        "string for list": lambda: {"method": "POST", "url": "/embed", "json": {"texts": "abc"}},
        "huge batch": lambda: {"method": "POST", "url": "/embed", "json": {"texts": ["a"] * (limits["max_batch"] + 1)}},
        "text too long": lambda: {"method": "POST", "url": "/embed", "json": {"texts": [too_long]}},
        "body too large": lambda: {"method": "POST", "url": "/embed", "content": oversized, "headers": as_json},
        "unknown field": lambda: {"method": "POST", "url": "/embed", "json": {"texts": ["a"], "lang": "en"}},
        "pair of one": lambda: {"method": "POST", "url": "/similarity", "json": {"pairs": [["a"]]}},
        "unknown prompt": lambda: {"method": "POST", "url": "/embed", "json": {"texts": ["a"], "prompt_name": "x"}},
        "k = 0": lambda: {"method": "POST", "url": "/search", "json": {"query": "a", "k": 0}},
        "k over max_k": lambda: {"method": "POST", "url": "/search", "json": {"query": "a", "k": limits["max_k"] + 1}},
        "unknown route": lambda: {"method": "GET", "url": "/nowhere"},
        "wrong method": lambda: {"method": "GET", "url": "/embed"},
    }


async def malformed_run(url: str, total: int, limits: dict[str, int]) -> dict[str, Any]:
    builders = malformed_requests(limits)
    names = [name for _, name in zip(range(total), _cycle(list(builders)), strict=False)]
    results: dict[str, Counter[str]] = {name: Counter() for name in builders}

    async def send(http: httpx.AsyncClient, name: str) -> None:
        try:
            status = str((await http.request(**builders[name]())).status_code)
        except httpx.HTTPError as exc:
            status = f"exception:{type(exc).__name__}"
        results[name][status] += 1

    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        for start in range(0, len(names), 8):
            await asyncio.gather(*(send(http, name) for name in names[start : start + 8]))
    statuses = sum(results.values(), Counter())
    return {
        "requests": len(names),
        "by_kind": {name: dict(counts) for name, counts in results.items()},
        "status": dict(statuses),
        "all_4xx": all(s.startswith("4") for s in statuses),
    }


def _cycle(items: list[str]) -> Any:
    while True:
        yield from items


# ---------------------------------------------------------------- offline encode on the same texts


def served_texts(
    plan: list[Planned], outcomes: list[Outcome], prompts: dict[str, str | None]
) -> list[tuple[str | None, str]]:
    """(prompt name, text) of every request answered 200, in the order they were answered."""
    done = [o for o in outcomes if o.status == "200" and o.index >= 0]  # outcomes are in answer order
    return [(prompts.get(o.endpoint), text) for o in done for text in plan[o.index].texts]


def offline_encode(
    model: str, backend: str, batch_size: int, texts: list[tuple[str | None, str]], merged: float, replay: int
) -> dict[str, Any]:
    """The encoder's own ``encode`` over ``texts``, in this process (the server stopped): sentences/s.

    ``one call``: per prompt, one ``encode`` over all its texts (as ``paraxl encode`` would).
    ``as merged``: the first ``replay`` texts in arrival order, in groups of ``merged`` texts of one prompt.
    """
    from paraxl.loading.model import load_model

    start = time.perf_counter()
    encoder = load_model(model, backend).encoder
    loaded = time.perf_counter() - start
    by_prompt: dict[str | None, list[str]] = {}
    for prompt, text in texts:
        by_prompt.setdefault(prompt, []).append(text)
    first_prompt, first_texts = next(iter(by_prompt.items()))
    encoder.encode(first_texts[:64], batch_size=batch_size, prompt_name=first_prompt, show_progress=False)  # warm-up

    def timed(groups: list[tuple[str | None, list[str]]]) -> dict[str, float]:
        cpu, start = own_cpu_seconds(), time.perf_counter()
        for prompt, group in groups:
            encoder.encode(group, batch_size=batch_size, prompt_name=prompt, show_progress=False)
        seconds = time.perf_counter() - start
        count = sum(len(group) for _, group in groups)
        return {
            "sentences": count,
            "seconds": seconds,
            "sentences_per_second": count / seconds,
            "cpu_seconds": own_cpu_seconds() - cpu,
            "calls": len(groups),
        }

    size = max(1, round(merged))
    chunks: list[tuple[str | None, list[str]]] = []
    for prompt, text in texts[:replay]:
        if not chunks or chunks[-1][0] != prompt or len(chunks[-1][1]) >= size:
            chunks.append((prompt, []))
        chunks[-1][1].append(text)
    return {
        "load_seconds": loaded,
        "batch_size": batch_size,
        "one_call": timed(list(by_prompt.items())),
        "as_merged": {**timed(chunks), "group_size": size},
    }


# ---------------------------------------------------------------- 4x overload


OVERLOAD_WINDOW = 10.0  # seconds: the 429 p99 of each stretch of a phase shows whether slow 429s cluster


def refused_p99_by_window(outcomes: list[Outcome], wall: float, window: float) -> list[float | None]:
    """p99 (ms) of the 429s sent in each ``window`` seconds of a load, in order (None: no 429 there)."""
    found: list[float | None] = []
    for start in np.arange(0.0, wall, window):
        times = [o.seconds for o in outcomes if o.status == "429" and start <= o.sent_at < start + window]
        found.append(float(np.percentile(times, 99) * 1000) if times else None)
    return found


def overload_run(
    server: Server, plan: list[Planned], args: argparse.Namespace, mix: dict[str, float], max_k: int
) -> dict[str, Any]:
    """Phases A (``concurrency`` clients), B (4x), C (``concurrency``), ``phase_seconds`` each, back to back,
    from this process's httpx clients or (``--load-generator locust``) one Locust run per phase."""
    phases: dict[str, Any] = {}
    offset = 0
    for name, clients in (("A", args.concurrency), ("B", 4 * args.concurrency), ("C", args.concurrency)):
        measured = Measured(server)
        if args.load_generator == "locust":
            outcomes, wall = locust_load_test(
                server.url,
                args,
                mix,
                max_k,
                users=clients,
                seconds=args.phase_seconds,
                offset=offset,
                retry_after=args.retry_after,
            )
        else:
            outcomes, wall = asyncio.run(
                load_test(server.url, plan[offset:], clients, args.phase_seconds, retry_after=args.retry_after)
            )
        offset += len(outcomes)
        phases[name] = {"clients": clients, **summarise(outcomes, wall, len(outcomes)), **measured.result(wall)}
        phases[name]["refused_p99_ms_by_window"] = refused_p99_by_window(outcomes, wall, OVERLOAD_WINDOW)
        print(f"[overload] phase {name}: {clients} clients, {len(outcomes)} requests", file=sys.stderr)
    rate = phases["A"].get("encoder", {}).get("texts_per_second_while_encoding")
    # the longest batch a full queue can make: the queued texts plus the largest request (8 pairs = 16 texts)
    one_batch = (args.overload_max_queue + 16) / rate if rate else math.nan
    bound_ms = 1000 * (args.overload_max_wait + one_batch)
    refused = [phase["refused_p99_ms"] for phase in phases.values() if phase["refused_429"]]
    bars = {
        "p99_429_ms": max(refused) if refused else None,
        "p99_429_under_50_ms": all(ms < 50 for ms in refused),
        "served_p99_bound_ms": bound_ms,
        "served_p99_ms": {name: phase["served_p99_ms"] for name, phase in phases.items()},
        "served_p99_within_bound": all(phase["served_p99_ms"] <= bound_ms for phase in phases.values()),
        "server_errors_5xx": sum(phase["server_errors_5xx"] for phase in phases.values()),
        "recovery": phases["C"]["sentences_per_second"] / phases["A"]["sentences_per_second"],
    }
    return {
        "queue": {"max_queue": args.overload_max_queue, "max_wait_seconds": args.overload_max_wait},
        "retry_after": args.retry_after,
        "phase_seconds": args.phase_seconds,
        "phases": phases,
        "bars": bars,
    }


# ---------------------------------------------------------------- Locust as the load generator

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"


def locust_load_test(
    url: str,
    args: argparse.Namespace,
    mix: dict[str, float],
    max_k: int,
    *,
    users: int | None = None,
    seconds: float | None = None,
    offset: int = 0,
    retry_after: str = "ignore",
) -> tuple[list[Outcome], float]:
    """``locust --headless`` with ``users`` (default ``args.concurrency``) users sending the plan from
    ``offset`` for at most ``seconds`` (default ``args.max_seconds``); its outcomes (via a JSON file)."""
    users = users or args.concurrency
    seconds = seconds or args.max_seconds
    with tempfile.TemporaryDirectory(prefix="paraxl-locust-") as tmp:
        out = Path(tmp) / "outcomes.json"
        env = {
            **os.environ,
            "PARAXL_BENCH_DATA_DIR": str(args.data_dir),
            "PARAXL_BENCH_REQUESTS": str(args.requests),
            "PARAXL_BENCH_SEED": str(args.seed),
            "PARAXL_BENCH_MIX": json.dumps(mix),
            "PARAXL_BENCH_MAX_K": str(max_k),
            "PARAXL_BENCH_OFFSET": str(offset),
            "PARAXL_BENCH_RETRY_AFTER": retry_after,
            "PARAXL_BENCH_OUT": str(out),
        }
        command = [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(LOCUSTFILE),
            "--headless",
            "--only-summary",
            "-u",
            str(users),
            "-r",
            str(args.spawn_rate or users),
            "--run-time",
            f"{int(seconds)}s",
            "--stop-timeout",
            "120",
            "--host",
            url,
            "--loglevel",
            "WARNING",
            "--exit-code-on-error",
            "0",
        ]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 300)
        if done.returncode != 0 or not out.is_file():
            raise SystemExit(f"locust failed ({done.returncode}):\n{done.stderr[-3000:]}")
        recorded = json.loads(out.read_text())
    outcomes = [Outcome(**row) for row in recorded["outcomes"]]
    return outcomes, float(recorded["wall_seconds"])


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("PARAXL_DATA_DIR", "../shared/data")))
    parser.add_argument("--model", default="bundled:multilingual-e5-small")
    parser.add_argument("--backend", default="torch")
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--max-seconds", type=float, default=600, help="per load test; stops early, reports done")
    parser.add_argument("--index", choices=("build", "none"), default="build")
    parser.add_argument("--index-size", type=int, default=2000)
    parser.add_argument("--micro-batch", choices=("both", "on", "off"), default="both")
    parser.add_argument("--malformed", type=int, default=300)
    parser.add_argument("--threshold", type=float, default=None, help="default: the calibration, else 0.85")
    parser.add_argument("--batch-size", type=int, default=32, help="the server's --batch-size, and offline's")
    parser.add_argument("--offline", choices=("on", "off"), default="on", help="offline encode of the same texts")
    parser.add_argument("--replay-texts", type=int, default=10_000, help="texts of the offline 'as merged' replay")
    parser.add_argument("--load-generator", choices=("httpx", "locust"), default="httpx")
    parser.add_argument(
        "--spawn-rate", type=float, default=None, help="locust: users started per second (default: all at once)"
    )
    parser.add_argument("--overload", action="store_true", help="the 4x overload run instead of the load test")
    parser.add_argument("--phase-seconds", type=float, default=60, help="--overload: length of each phase")
    parser.add_argument("--overload-max-queue", type=int, default=64, help="--overload: the server's --max-queue")
    parser.add_argument("--overload-max-wait", type=float, default=2.0, help="--overload: --max-wait-seconds")
    parser.add_argument("--retry-after", choices=("honor", "ignore"), default="honor", help="--overload clients")
    parser.add_argument("--server-cpus", default=None, help="CPU ids for the server, e.g. 0 (default: all)")
    parser.add_argument("--client-cpus", default=None, help="CPU ids for this process, the load generator, e.g. 1")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--startup-timeout", type=float, default=600)
    parser.add_argument("--tag", default="", help="suffix of the result files")
    return parser.parse_args()


def cpu_set(text: str | None) -> set[int] | None:
    """``"0,1"`` -> {0, 1}; None for all CPUs."""
    return {int(part) for part in text.split(",")} if text else None


def main() -> None:
    args = parse_args()
    server_cpus, client_cpus = cpu_set(args.server_cpus), cpu_set(args.client_cpus)
    if client_cpus:
        os.sched_setaffinity(0, client_cpus)  # the load generator (and the offline encode) stay off the server's
    pairs, source = load_pairs(args.data_dir, per_language=400)
    result: dict[str, Any] = {
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        "model": args.model,
        "backend": args.backend,
        "sentences": source,
        "concurrency": args.concurrency,
        "load_generator": args.load_generator,
        "spawn_rate": args.spawn_rate,
        "mix": dict(MIX),
        "affinity": {"server_cpus": sorted(server_cpus or []), "client_cpus": sorted(client_cpus or [])},
    }
    serve_args = [args.model, "--backend", args.backend, "--batch-size", str(args.batch_size)]
    threshold = args.threshold
    if threshold is None and needs_threshold(args.model):
        threshold = 0.85
    if threshold is not None:
        serve_args += ["--threshold", str(threshold)]
    result["paraphrase_decision"] = "calibration" if threshold is None else f"fixed threshold {threshold}"

    mix = dict(MIX)
    with tempfile.TemporaryDirectory(prefix="paraxl-bench-service-") as tmp:
        if args.index == "build":
            corpus = list(dict.fromkeys(s for pair in pairs for s in pair))[: args.index_size]
            result["index"] = build_index(corpus, args.model, args.backend, Path(tmp))
            if result["index"]["built"]:
                serve_args += ["--index", str(Path(tmp) / "index")]
        else:
            result["index"] = {"built": False, "why": "--index none"}
        if "--index" not in serve_args:
            mix.pop("/search")
            print(f"no /search traffic: {result['index']['why']}", file=sys.stderr)
        if args.overload:
            queue = ["--max-queue", str(args.overload_max_queue), "--max-wait-seconds", str(args.overload_max_wait)]
            server = Server(serve_args + queue, args.startup_timeout, server_cpus)
            try:
                limits = httpx.get(f"{server.url}/health", timeout=10).json()["limits"]
                plan = plan_requests(mix, pairs, args.requests, args.seed, limits["max_k"])
                freeze_loaded_objects()  # the plan out of full GC passes: their pauses are not the server's
                asyncio.run(load_test(server.url, plan[: 2 * args.concurrency], args.concurrency, 120))  # warm-up
                phases = overload_run(server, plan, args, mix, limits["max_k"])
                result["overload"] = {"server": server.command, **phases}
            finally:
                result["overload_server_tracebacks"] = server.stop().count("Traceback")
            result["limits"] = limits
        else:
            modes = {"both": [True, False], "on": [True], "off": [False]}[args.micro_batch]
            result["runs"] = {}
            for micro in modes:
                label = "micro-batch" if micro else "no micro-batch"
                result["runs"][label], result["limits"] = one_run(serve_args, micro, len(modes) == 1, args, mix, pairs)

    result["problems"] = problems(result)
    name = f"service-{args.tag}" if args.tag else "service"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2, default=float) + "\n")
    (RESULTS / f"{name}.md").write_text(render(result))
    print(render(result))
    if result["problems"]:
        raise SystemExit("; ".join(result["problems"]))


def one_run(
    serve_args: list[str],
    micro: bool,
    alone: bool,
    args: argparse.Namespace,
    mix: dict[str, float],
    pairs: list[tuple[str, str]],
) -> tuple[dict[str, Any], dict[str, int]]:
    """One server (micro-batching on or off): warm-up, the load test, malformed requests; then offline encode."""
    label = "micro-batch" if micro else "no micro-batch"
    switch = [] if micro else ["--no-micro-batch"]
    server = Server(serve_args + switch, args.startup_timeout, cpu_set(args.server_cpus))
    run: dict[str, Any] = {"server": server.command, "startup_seconds": server.startup_seconds}
    try:
        health = httpx.get(f"{server.url}/health", timeout=10).json()
        limits = health["limits"]
        default = health["default_prompt_name"]
        prompts = {endpoint: default for endpoint in mix}
        if health["index"] is not None and health["index"]["prompt_name"] is not None:
            prompts["/search"] = health["index"]["prompt_name"]  # the server encodes queries with the index's prompt
        plan = plan_requests(mix, pairs, args.requests, args.seed, limits["max_k"])
        warm = plan_requests(mix, pairs[:50], 2 * args.concurrency, args.seed + 1, limits["max_k"])
        freeze_loaded_objects()  # the plan out of full GC passes: their pauses are not the server's
        asyncio.run(load_test(server.url, warm, args.concurrency, 120))
        print(f"[{label}] load test: {args.requests} requests, {args.concurrency} clients", file=sys.stderr)
        measured = Measured(server)
        if args.load_generator == "locust":
            outcomes, wall = locust_load_test(server.url, args, mix, limits["max_k"])
        else:
            outcomes, wall = asyncio.run(load_test(server.url, plan, args.concurrency, args.max_seconds))
        run["load"] = {**summarise(outcomes, wall, args.requests), **measured.result(wall)}
        if (micro or alone) and args.malformed:
            run["malformed"] = asyncio.run(malformed_run(server.url, args.malformed, limits))
    finally:
        log = server.stop()
    run["server_tracebacks"] = log.count("Traceback")
    if args.offline == "on" and (micro or alone):
        print(f"[{label}] offline encode of the same texts, server stopped", file=sys.stderr)
        merged = run["load"].get("encoder", {}).get("mean_merged_batch", args.batch_size)
        texts = served_texts(plan, outcomes, prompts)
        offline = offline_encode(args.model, args.backend, args.batch_size, texts, merged, args.replay_texts)
        service_rate = run["load"]["sentences_per_second"]
        offline["service_over_one_call"] = service_rate / offline["one_call"]["sentences_per_second"]
        offline["service_over_as_merged"] = service_rate / offline["as_merged"]["sentences_per_second"]
        run["offline"] = offline
    return run, limits


def problems(result: dict[str, Any]) -> list[str]:
    found = []
    for label, run in result.get("runs", {}).items():
        if run["load"]["server_errors_5xx"]:
            found.append(f"{label}: {run['load']['server_errors_5xx']} responses were 5xx")
        if not run.get("malformed", {}).get("all_4xx", True):
            found.append(f"{label}: some malformed requests did not get a 4xx")
        if run["server_tracebacks"]:
            found.append(f"{label}: {run['server_tracebacks']} tracebacks in the server log")
    if "overload" in result:
        if result["overload"]["bars"]["server_errors_5xx"]:
            found.append(f"overload: {result['overload']['bars']['server_errors_5xx']} responses were 5xx")
        if result["overload_server_tracebacks"]:
            found.append(f"overload: {result['overload_server_tracebacks']} tracebacks in the server log")
    return found


def render(result: dict[str, Any]) -> str:
    index = result["index"]
    lines = [
        f"Command: `{result['command']}`  ",
        f"Machine: {result['machine']}; model `{result['model']}` ({result['backend']}); "
        f"{result['concurrency']} concurrent clients ({result['load_generator']}); sentences: {result['sentences']}; "
        f"/paraphrase by {result['paraphrase_decision']}; index: "
        + (f"{index['sentences']} sentences, built in {index['seconds']:.1f} s" if index["built"] else index["why"]),
    ]
    if "overload" in result:
        return "\n".join(lines + render_overload(result["overload"], result["problems"])) + "\n"
    lines += [
        "",
        "| run | requests done | req/s | sentences/s | p50 ms | p99 ms | 5xx | client errors | statuses |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, run in result["runs"].items():
        load = run["load"]
        stopped = " (stopped early)" if load["stopped_early"] else ""
        lines.append(
            f"| {label} | {load['done']}/{load['planned']}{stopped} | {load['requests_per_second']:.1f} | "
            f"{load['sentences_per_second']:.1f} | {load['overall_p50_ms']:.0f} | {load['overall_p99_ms']:.0f} | "
            f"{load['server_errors_5xx']} | {load['client_exceptions']} | {load['status']} |"
        )
    lines += [
        "",
        "| run | server CPU s | load generator CPU s | wall s | encoder busy | encoder texts/s | mean merged batch |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, run in result["runs"].items():
        load, encoder = run["load"], run["load"].get("encoder", {})
        lines.append(
            f"| {label} | {_num(load.get('server_cpu_seconds'))} | {_num(load.get('generator_cpu_seconds'))} | "
            f"{load['wall_seconds']:.1f} | {_pct(encoder.get('busy_share'))} | "
            f"{_num(encoder.get('texts_per_second_while_encoding'))} | {_num(encoder.get('mean_merged_batch'))} |"
        )
    for label, run in result["runs"].items():
        if "offline" in run:
            lines += render_offline(label, run)
    lines += ["", "| run | endpoint | requests | p50 ms | p99 ms | statuses |", "|---|---|---|---|---|---|"]
    for label, run in result["runs"].items():
        for endpoint, stats in run["load"]["endpoints"].items():
            lines.append(
                f"| {label} | `{endpoint}` | {stats['requests']} | {stats['p50_ms']:.0f} | {stats['p99_ms']:.0f} | "
                f"{stats['status']} |"
            )
    for label, run in result["runs"].items():
        if "malformed" not in run:
            continue
        bad = run["malformed"]
        lines += [
            "",
            f"Malformed requests ({label}): {bad['requests']} sent, statuses {bad['status']}, "
            f"all 4xx: {'yes' if bad['all_4xx'] else 'NO'}; server tracebacks in the log: {run['server_tracebacks']}",
            "",
            "| kind | statuses |",
            "|---|---|",
            *(f"| {kind} | {counts} |" for kind, counts in bad["by_kind"].items()),
        ]
    if result["problems"]:
        lines += ["", "**Problems:** " + "; ".join(result["problems"])]
    return "\n".join(lines) + "\n"


def render_offline(label: str, run: dict[str, Any]) -> list[str]:
    offline, load = run["offline"], run["load"]
    one, merged = offline["one_call"], offline["as_merged"]
    return [
        "",
        f"Offline `encode` ({label}; same backend, batch size {offline['batch_size']}, the texts of the "
        f"{load['completed_200']} requests answered 200; server stopped):",
        "",
        "| policy | sentences | seconds | sentences/s | service ÷ offline |",
        "|---|---|---|---|---|",
        f"| service (HTTP, {load['completed_200']}/{load['planned']} answered 200, p50 {load['served_p50_ms']:.0f} ms, "
        f"p99 {load['served_p99_ms']:.0f} ms, 5xx {load['server_errors_5xx']}) | {load['sentences']} | "
        f"{load['wall_seconds']:.1f} | {load['sentences_per_second']:.1f} | |",
        f"| offline, one call per prompt (`paraxl encode`; the bar) | {one['sentences']} | {one['seconds']:.1f} | "
        f"{one['sentences_per_second']:.1f} | **{offline['service_over_one_call']:.1%}** |",
        f"| offline, as merged (groups of {merged['group_size']} in arrival order) | {merged['sentences']} | "
        f"{merged['seconds']:.1f} | {merged['sentences_per_second']:.1f} | {offline['service_over_as_merged']:.1%} |",
    ]


def render_overload(overload: dict[str, Any], found: list[str]) -> list[str]:
    bars, queue = overload["bars"], overload["queue"]
    lines = [
        "",
        f"4x overload: server `--max-queue {queue['max_queue']} --max-wait-seconds {queue['max_wait_seconds']}`; "
        f"{overload['phase_seconds']:g} s per phase; clients {overload['retry_after']} Retry-After after a 429.",
        "",
        "| phase | clients | requests | req/s | served/s | sentences/s | 429 | p99 429 ms | p50 served ms | "
        "p99 served ms | 5xx | errors | server CPU s | generator CPU s | encoder busy |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, phase in overload["phases"].items():
        lines.append(
            f"| {name} | {phase['clients']} | {phase['done']} | {phase['requests_per_second']:.1f} | "
            f"{phase['served_per_second']:.1f} | {phase['sentences_per_second']:.1f} | {phase['refused_429']} | "
            f"{_num(phase['refused_p99_ms'])} | {phase['served_p50_ms']:.0f} | {phase['served_p99_ms']:.0f} | "
            f"{phase['server_errors_5xx']} | {phase['client_exceptions']} | {_num(phase.get('server_cpu_seconds'))} | "
            f"{_num(phase.get('generator_cpu_seconds'))} | {_pct(phase.get('encoder', {}).get('busy_share'))} |"
        )
    lines += [
        "",
        f"p99 of 429s (ms) per {OVERLOAD_WINDOW:g} s of each phase, by when they were sent: "
        + " | ".join(
            f"{name}: " + ", ".join(_num(ms) for ms in phase.get("refused_p99_ms_by_window", []))
            for name, phase in overload["phases"].items()
        ),
        "",
        "429s by reason (full: refused at admission; deadline: waited the queue's max wait): "
        + " | ".join(f"{name}: {_reasons(phase)}" for name, phase in overload["phases"].items()),
        "",
        f"Bars: p99 of 429s {_num(bars['p99_429_ms'])} ms (< 50 ms: {'yes' if bars['p99_429_under_50_ms'] else 'NO'}); "
        f"served p99 within wait + one batch ({bars['served_p99_bound_ms']:.0f} ms): "
        f"{'yes' if bars['served_p99_within_bound'] else 'NO'}; 5xx: {bars['server_errors_5xx']}; "
        f"recovery (phase C ÷ phase A sentences/s): {bars['recovery']:.1%}.",
    ]
    if found:
        lines += ["", "**Problems:** " + "; ".join(found)]
    return lines


def _reasons(phase: dict[str, Any]) -> str:
    by_reason = phase["refused_by_reason"].items()
    return (
        "; ".join(f"{reason} {stats['count']}, p99 {stats['p99_ms']:.0f} ms" for reason, stats in by_reason) or "none"
    )


def _num(value: float | None) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.1f}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


if __name__ == "__main__":
    main()
