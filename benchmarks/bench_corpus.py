"""Streaming corpus encoding: sentences/s and peak memory per engine, at two corpus sizes, in one run.

Usage (the lead's run, alone on the machine; the bundled multilingual-e5-small):
    python benchmarks/bench_corpus.py --data-dir ../shared/data --sizes 20000,100000 \
        --engines local-1,local-2,ray-2 --shard-size 2000
Quick check (seconds; the tiny test model or any model folder):
    python benchmarks/bench_corpus.py --sizes 200,400 --shard-size 50 --model /path/to/model --name corpus-check

The corpus is real sentences from the data folder (Tatoeba, XNLI, SIB-200, WMT newstest, PAWS-X;
lines repeat once the sources are used up: fine for throughput), written as 4 txt files per size.
Each (size, engine) runs in its own process and encodes it from scratch into a fresh folder with
``paraxl.corpus.encode_corpus``: ``local-N`` is N local processes (1: the driver itself), ``ray-N``
Ray Data with N actors on a Ray started on this machine (loopback). Workers get cores / N torch
threads each.

Reported per run: wall seconds (model loads and Ray start included) and sentences/s over them; the
steady rate (sentences after the first shard / seconds after it); peak RSS of the driver, of the
largest other process and of the whole process tree (sampled every 0.1 s with psutil: the driver and
all its descendants, which for Ray includes its GCS and raylet). The markdown gives Ray's overhead
against local at equal workers and each engine's peak-RSS ratio between the two sizes (flat memory:
about 1.0). Writes ``benchmarks/results/<name>.json`` and ``.md`` after every run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # Ray on loopback only

import numpy as np
import psutil

from paraxl.corpus.encode import CorpusRequest, encode_corpus
from paraxl.evaluation.bench_report import cpu_info
from paraxl.modeling.threads import physical_cores

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
FILES_PER_CORPUS = 4
RESULT_PREFIX = "RESULT "


def real_sentences(data_dir: Path) -> Iterator[str]:
    """Sentences of the data folder's line-per-sentence and tsv sources, each source in file order."""
    patterns = [
        "tatoeba/v1/tatoeba.*",
        "wmt_newstest/*",
        "xnli/dev-*.tsv",
        "sib200/*/train.tsv",
        "pawsx/resplit/*/train.tsv",
    ]
    for pattern in patterns:
        for path in sorted(data_dir.glob(pattern)):
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            if path.suffix == ".tsv":
                lines = [field for line in lines[1:] for field in line.split("\t") if len(field) > 20]
            yield from (line.strip() for line in lines if line.strip())


def build_corpus(data_dir: Path, size: int, folder: Path, sample_of: int | None = None) -> list[Path]:
    """``size`` sentences in :data:`FILES_PER_CORPUS` txt files (sources cycled when used up).

    ``sample_of``: instead of the first ``size`` sentences, ``size`` evenly spaced ones of the
    ``sample_of``-sentence corpus, so that corpora of different sizes have the same mix of sources (and
    of sentence lengths): the first 200,000 sentences are mostly short Tatoeba lines, 1,000,000 hold
    every source, and a memory comparison between them would compare sentence lengths, not sizes.
    """
    folder.mkdir(parents=True, exist_ok=True)
    total = max(size, sample_of or 0)
    sentences: list[str] = []
    while len(sentences) < total:
        before = len(sentences)
        sentences.extend(s for s, _ in zip(real_sentences(data_dir), range(total - len(sentences)), strict=False))
        if len(sentences) == before:
            raise SystemExit(f"no sentences found under {data_dir}")
    if total > size:
        sentences = [sentences[i] for i in np.linspace(0, total - 1, size).round().astype(int)]
    per_file = -(-size // FILES_PER_CORPUS)
    paths = []
    for number in range(FILES_PER_CORPUS):
        path = folder / f"part-{number}.txt"
        path.write_text(
            "".join(s.replace("\t", " ") + "\n" for s in sentences[number * per_file : (number + 1) * per_file])
        )
        paths.append(path)
    return paths


class MemorySampler:
    """Peak RSS of this process, of its largest descendant and of the whole tree, sampled in a thread."""

    def __init__(self, every: float = 0.1) -> None:
        self.every, self.driver, self.largest_child, self.total = every, 0, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            driver, children = me.memory_info().rss, []
            for child in me.children(recursive=True):
                try:
                    children.append(child.memory_info().rss)
                except psutil.Error:
                    continue  # exited between listing and reading
            self.driver = max(self.driver, driver)
            self.largest_child = max(self.largest_child, max(children, default=0))
            self.total = max(self.total, driver + sum(children))
            self._stop.wait(self.every)


def run_one(args: argparse.Namespace, engine: str, inputs: list[Path], size: int, work: Path) -> dict[str, Any]:
    kind, workers = engine.split("-")
    output = work / f"out-{size}-{engine}"
    shutil.rmtree(output, ignore_errors=True)
    request = CorpusRequest(
        inputs=tuple(str(p) for p in inputs),
        output_dir=output,
        model=args.model,
        backend=args.backend,
        shard_size=args.shard_size,
        batch_size=args.batch_size,
        dtype=args.dtype,
        engine=kind,
        workers=int(workers),
    )
    marks: list[tuple[float, int]] = []
    start = time.perf_counter()

    def progress(done: int, total: int) -> None:
        marks.append((time.perf_counter() - start, done))

    with MemorySampler() as memory:
        summary = encode_corpus(request, progress=progress)
    wall = time.perf_counter() - start
    first = next((seconds for seconds, done in marks if done >= 1), wall)
    steady_rows = summary.rows_encoded - min(args.shard_size, summary.rows_encoded)
    shutil.rmtree(output, ignore_errors=True)
    return {
        "size": size,
        "engine": engine,
        "workers": int(workers),
        "shards": summary.shards,
        "wall_seconds": round(wall, 2),
        "sentences_per_second": round(summary.rows_encoded / wall, 1),
        "first_shard_seconds": round(first, 2),
        "steady_sentences_per_second": round(steady_rows / max(wall - first, 1e-9), 1) if steady_rows else None,
        "peak_rss_driver_mb": round(memory.driver / 2**20, 1),
        "peak_rss_largest_other_process_mb": round(memory.largest_child / 2**20, 1),
        "peak_rss_tree_mb": round(memory.total / 2**20, 1),
    }


def run_in_child(args: argparse.Namespace, engine: str, size: int, work: Path) -> dict[str, Any]:
    """:func:`run_one` in a fresh process, so each run's peak memory starts from a clean interpreter."""
    command = [sys.executable, str(Path(__file__).resolve()), "--run-one", f"{size}:{engine}", "--work-dir", str(work)]
    command += ["--model", args.model, "--shard-size", str(args.shard_size), "--batch-size", str(args.batch_size)]
    command += ["--dtype", args.dtype, "--backend", args.backend]
    finished = subprocess.run(command, capture_output=True, text=True, check=False)
    for line in finished.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            result: dict[str, Any] = json.loads(line.removeprefix(RESULT_PREFIX))
            return result
    raise SystemExit(f"run {size}:{engine} failed (exit {finished.returncode}):\n{finished.stderr[-3000:]}")


def markdown(document: dict[str, Any]) -> str:
    runs = document["runs"]
    lines = [
        f"# Streaming corpus encode ({document['model']} on {document.get('backend', 'torch')}, "
        f"shard {document['shard_size']}, "
        f"batch {document['batch_size']}, {document['dtype']}, {document['physical_cores']} cores)",
        "",
        "| sentences | engine | wall s | sentences/s | steady/s | first shard s "
        "| peak RSS driver MB | largest other MB | tree MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        lines.append(
            f"| {run['size']} | {run['engine']} | {run['wall_seconds']} | {run['sentences_per_second']} | "
            f"{run['steady_sentences_per_second']} | {run['first_shard_seconds']} | {run['peak_rss_driver_mb']} | "
            f"{run['peak_rss_largest_other_process_mb']} | {run['peak_rss_tree_mb']} |"
        )
    by_key = {(run["size"], run["engine"]): run for run in runs}
    lines += ["", "Ray overhead against local at equal workers (wall sentences/s; > 0: Ray slower):", ""]
    for (size, engine), run in by_key.items():
        local = by_key.get((size, engine.replace("ray-", "local-")))
        if engine.startswith("ray-") and local:
            overhead = local["sentences_per_second"] / run["sentences_per_second"] - 1
            lines.append(f"- {size} sentences, {engine} vs local: {overhead:+.1%}")
    sizes = sorted({run["size"] for run in runs})
    if len(sizes) >= 2:
        lines += ["", f"Peak RSS of the tree, {sizes[-1]} / {sizes[0]} sentences (flat memory: about 1.0):", ""]
        for engine in document["engines"]:
            low, high = by_key.get((sizes[0], engine)), by_key.get((sizes[-1], engine))
            if low and high:
                lines.append(f"- {engine}: {high['peak_rss_tree_mb'] / low['peak_rss_tree_mb']:.2f}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("PARAXL_DATA_DIR", REPO.parent / "shared" / "data"))
    )
    parser.add_argument("--sizes", default="20000,100000", help="corpus sizes in sentences, comma-separated")
    parser.add_argument("--engines", default="local-1,local-2,ray-2", help="local-N and ray-N, comma-separated")
    parser.add_argument("--model", default="bundled:multilingual-e5-small")
    parser.add_argument("--backend", default="torch", help="torch, onnx or onnx-int8 (the model's checked export)")
    parser.add_argument("--shard-size", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--dtype", default="float16", choices=("float32", "float16"))
    parser.add_argument(
        "--work-dir", type=Path, default=None, help="corpus and shards go here (default: a temp folder)"
    )
    parser.add_argument(
        "--sample-of",
        type=int,
        default=None,
        help="each corpus: SIZE evenly spaced sentences of the corpus of this many (the same source mix at every size)",
    )
    parser.add_argument("--name", default="corpus_encode", help="results file name (without extension)")
    parser.add_argument("--run-one", default=None, help=argparse.SUPPRESS)  # SIZE:ENGINE, in a child process
    args = parser.parse_args()
    if args.run_one is not None:
        size_text, engine = args.run_one.split(":")
        inputs = sorted((args.work_dir / f"corpus-{size_text}").glob("part-*.txt"))
        print(RESULT_PREFIX + json.dumps(run_one(args, engine, inputs, int(size_text), args.work_dir)), flush=True)
        return
    engines = [engine.strip() for engine in args.engines.split(",")]
    for engine in engines:
        kind, _, workers = engine.partition("-")
        if kind not in ("local", "ray") or not workers.isdigit():
            parser.error(f"engine {engine!r}: use local-N or ray-N")
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="bench-corpus-"))
    document: dict[str, Any] = {
        "model": args.model,
        "backend": args.backend,
        "cpu": cpu_info(),
        "shard_size": args.shard_size,
        "batch_size": args.batch_size,
        "dtype": args.dtype,
        "sample_of": args.sample_of,
        "engines": engines,
        "physical_cores": physical_cores(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "runs": [],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    try:
        for size in (int(text) for text in args.sizes.split(",")):
            build_corpus(args.data_dir, size, work / f"corpus-{size}", args.sample_of)
            for engine in engines:
                document["runs"].append(run_in_child(args, engine, size, work))
                print(json.dumps(document["runs"][-1]), flush=True)
                (RESULTS / f"{args.name}.json").write_text(json.dumps(document, indent=1) + "\n")
                (RESULTS / f"{args.name}.md").write_text(markdown(document))
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    print(markdown(document))


if __name__ == "__main__":
    main()
