"""Load test of ``paraxl serve``: throughput and latency under concurrent mixed traffic, then malformed requests.

Usage:
    python benchmarks/bench_service.py --data-dir ../shared/data [--model bundled:multilingual-e5-small]
        [--backend torch] [--requests 10000] [--concurrency 32] [--max-seconds 600]
        [--index build|none] [--micro-batch both|on|off] [--malformed 300] [--tag NAME]

Writes ``benchmarks/results/service[-TAG].json`` and ``.md``.

The server runs in its own process (``python -m paraxl.cli.main serve`` on 127.0.0.1, a free port),
started by this script; the clients are asyncio tasks sharing one ``httpx.AsyncClient`` here. On a
2-core machine client and server share the cores, so the rates are a lower bound for the server.
Traffic: 40 % /similarity, 25 % /embed, 15 % /paraphrase, 15 % /search, 5 % /health (seeded), each
request 1-8 short Tatoeba sentences (pairs: a sentence and its English translation); /search runs
against an index of 2,000 Tatoeba sentences that ``paraxl index build`` makes first (``--index none``
to skip: its share goes to the other endpoints). ``--micro-batch both`` runs the load test twice,
with and without the server merging queued requests into one forward pass, to measure that choice.
The malformed run sends bad JSON, wrong types, empty texts, oversized batches, texts and bodies,
unknown fields, bad k, unknown routes and methods: every answer must be 4xx.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import socket
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
        from paraxl.decision.calibration import load_calibration
        from paraxl.loading.specs import resolve_model_folder
    except ImportError:
        return True
    return load_calibration(resolve_model_folder(model)) is None


class Server:
    """``paraxl serve`` in a child process; its log goes to a temporary file we scan for tracebacks."""

    def __init__(self, args: list[str], startup_timeout: float) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix="paraxl-serve-", suffix=".log", delete=False)  # noqa: SIM115
        command = paraxl_cli("serve", *args, "--port", str(self.port), "--log-level", "warning")
        self.command = " ".join(command[2:])
        start = time.perf_counter()
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)
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


def make_request(
    endpoint: str, rng: random.Random, pairs: list[tuple[str, str]], max_k: int
) -> tuple[str, str, dict[str, Any] | None, int]:
    """(method, path, JSON body, sentences it carries) for one request of the mix."""
    n = rng.randint(1, 8)
    if endpoint == "/health":
        return "GET", endpoint, None, 0
    if endpoint in ("/similarity", "/paraphrase"):
        chosen = [list(rng.choice(pairs)) for _ in range(max(1, n // 2))]
        return "POST", endpoint, {"pairs": chosen}, 2 * len(chosen)
    texts = [rng.choice(rng.choice(pairs)) for _ in range(n)]
    if endpoint == "/embed":
        return "POST", endpoint, {"texts": texts}, n
    return "POST", endpoint, {"queries": texts, "k": min(10, max_k)}, n


async def load_test(
    url: str, mix: dict[str, float], pairs: list[tuple[str, str]], args: argparse.Namespace, max_k: int
) -> tuple[list[Outcome], float]:
    """``args.concurrency`` clients issue up to ``args.requests`` requests or run ``args.max_seconds``."""
    endpoints, weights = list(mix), list(mix.values())
    plan_rng = random.Random(args.seed)
    plan = [plan_rng.choices(endpoints, weights)[0] for _ in range(args.requests)]
    outcomes: list[Outcome] = []
    next_index = 0
    deadline = time.perf_counter() + args.max_seconds
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)

    async def client(worker: int, http: httpx.AsyncClient) -> None:
        nonlocal next_index
        rng = random.Random(args.seed * 1000 + worker)
        while next_index < len(plan) and time.perf_counter() < deadline:
            endpoint = plan[next_index]
            next_index += 1
            method, path, body, sentences = make_request(endpoint, rng, pairs, max_k)
            start = time.perf_counter()
            try:
                response = await http.request(method, path, json=body)
                status = str(response.status_code)
            except httpx.HTTPError as exc:
                status = f"exception:{type(exc).__name__}"
            outcomes.append(Outcome(endpoint, status, time.perf_counter() - start, sentences))

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as http:
        start = time.perf_counter()
        await asyncio.gather(*(client(i, http) for i in range(args.concurrency)))
        wall = time.perf_counter() - start
    return outcomes, wall


def summarise(outcomes: list[Outcome], wall: float, planned: int) -> dict[str, Any]:
    def latency(values: list[float]) -> dict[str, float]:
        ms = np.array(values) * 1000
        return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)), "mean_ms": ms.mean()}

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
        "stopped_early": len(outcomes) < planned,
        "wall_seconds": wall,
        "requests_per_second": len(outcomes) / wall,
        "sentences_per_second": sum(o.sentences for o in ok) / wall,
        **{f"overall_{key}": float(value) for key, value in latency([o.seconds for o in outcomes]).items()},
        "status": dict(statuses),
        "server_errors_5xx": sum(n for s, n in statuses.items() if s.startswith("5")),
        "client_exceptions": sum(n for s, n in statuses.items() if s.startswith("exception")),
        "endpoints": by_endpoint,
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


def main() -> None:
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
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--startup-timeout", type=float, default=600)
    parser.add_argument("--tag", default="", help="suffix of the result files")
    args = parser.parse_args()

    pairs, source = load_pairs(args.data_dir, per_language=400)
    result: dict[str, Any] = {
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        "model": args.model,
        "backend": args.backend,
        "sentences": source,
        "concurrency": args.concurrency,
        "mix": dict(MIX),
    }
    serve_args = [args.model, "--backend", args.backend]
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

        modes = {"both": [True, False], "on": [True], "off": [False]}[args.micro_batch]
        result["runs"] = {}
        for micro in modes:
            label = "micro-batch" if micro else "no micro-batch"
            server = Server(serve_args + ([] if micro else ["--no-micro-batch"]), args.startup_timeout)
            run: dict[str, Any] = {"server": server.command, "startup_seconds": server.startup_seconds}
            try:
                limits = httpx.get(f"{server.url}/health", timeout=10).json()["limits"]
                asyncio.run(load_test(server.url, mix, pairs[:50], _warmup(args), limits["max_k"]))
                print(f"[{label}] load test: {args.requests} requests, {args.concurrency} clients", file=sys.stderr)
                outcomes, wall = asyncio.run(load_test(server.url, mix, pairs, args, limits["max_k"]))
                run["load"] = summarise(outcomes, wall, args.requests)
                if micro or len(modes) == 1:
                    run["malformed"] = asyncio.run(malformed_run(server.url, args.malformed, limits))
            finally:
                log = server.stop()
            run["server_tracebacks"] = log.count("Traceback")
            result["runs"][label] = run
            result["limits"] = limits

    problems = []
    for label, run in result["runs"].items():
        if run["load"]["server_errors_5xx"]:
            problems.append(f"{label}: {run['load']['server_errors_5xx']} responses were 5xx")
        if not run.get("malformed", {}).get("all_4xx", True):
            problems.append(f"{label}: some malformed requests did not get a 4xx")
        if run["server_tracebacks"]:
            problems.append(f"{label}: {run['server_tracebacks']} tracebacks in the server log")
    result["problems"] = problems
    name = f"service-{args.tag}" if args.tag else "service"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2, default=float) + "\n")
    (RESULTS / f"{name}.md").write_text(render(result))
    print(render(result))
    if problems:
        raise SystemExit("; ".join(problems))


def _warmup(args: argparse.Namespace) -> argparse.Namespace:
    return argparse.Namespace(**{**vars(args), "requests": 2 * args.concurrency, "max_seconds": 120})


def render(result: dict[str, Any]) -> str:
    lines = [
        f"Command: `{result['command']}`  ",
        f"Machine: {result['machine']}; model `{result['model']}` ({result['backend']}); "
        f"{result['concurrency']} concurrent clients; sentences: {result['sentences']}; "
        f"/paraphrase by {result['paraphrase_decision']}; index: "
        + (
            f"{result['index']['sentences']} sentences, built in {result['index']['seconds']:.1f} s"
            if result["index"]["built"]
            else result["index"]["why"]
        ),
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


if __name__ == "__main__":
    main()
