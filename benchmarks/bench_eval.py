"""Time ``paraxl eval`` from an empty embedding cache on one backend, and check its scores.

Usage (the full suite: run it alone on the machine; the bar is <= 20 min on 2 cores):
    .venv/bin/python benchmarks/bench_eval.py --data-dir ../shared/data --backend auto
    # the plumbing only, < 1 min: every real task encodes 14k+ texts, so a time limit leaves the
    # task "not finished" (and the verdict FAIL); tests/test_bench_eval_script.py runs it end to
    # end on the tiny model and miniature data
    .venv/bin/python benchmarks/bench_eval.py --data-dir ../shared/data --tasks sts --max-seconds 50
    # the same on torch, to compare speed side by side (same machine, same session)
    .venv/bin/python benchmarks/bench_eval.py --data-dir ../shared/data --backend torch

Runs ``paraxl eval MODEL --tasks TASKS --backend BACKEND`` as its own process with
``PARAXL_CACHE_DIR`` pointing at a fresh folder, so no embedding is cached. The bundled models
already built in the usual cache are linked into it (``models/``), so the one-time model build
(and, for ``auto``/``onnx``, the one-time ONNX export that lives beside it) is not timed;
``--cold`` links nothing and times the build and the export as well. Records the wall time, the
peak RSS, the backend line paraxl printed, per task the seconds, texts encoded and texts/s
(from each result JSON), and compares every main score (and every per-language and per-subset
score) with the reference run's JSON (default: the 47-minute PyTorch run of issue 4,
``benchmarks/results/eval/e5-small-resplit/``) at the precision ``summary.md`` prints them.
Writes ``benchmarks/results/<out-name>.json`` and ``.md``; the result folder of the run is kept
under ``runs/bench_eval/<out-name>/``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from paraxl.evaluation.compare import ScoreComparison, compare_results
from paraxl.evaluation.results import read_result
from paraxl.evaluation.runner import parse_task_list
from paraxl.paths import CACHE_ENV, cache_dir

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
REFERENCE = RESULTS / "eval" / "e5-small-resplit"
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("PARAXL_DATA_DIR", "../shared/data")))
    parser.add_argument("--model", default="bundled:multilingual-e5-small")
    parser.add_argument("--backend", default="auto", help="auto, torch, onnx or onnx-int8")
    parser.add_argument("--tasks", default="all", help="as `paraxl eval --tasks` (a smoke run: one small task)")
    parser.add_argument("--batch-size", type=int, default=None, help="passed on to paraxl eval (default: its own)")
    parser.add_argument("--reference", type=Path, default=REFERENCE, help="folder of result JSONs to compare with")
    parser.add_argument("--max-seconds", type=float, default=None, help="stop the eval after this long (smoke runs)")
    parser.add_argument("--cold", action="store_true", help="also time the model build and ONNX export")
    parser.add_argument("--plots", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--out-name", default=None, help="default: eval_suite_<backend>[_<tasks>]")
    parser.add_argument("--results-dir", type=Path, default=RESULTS, help="where the JSON and markdown go")
    parser.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "bench_eval", help="where eval's output goes")
    args = parser.parse_args(argv)
    tasks = parse_task_list(args.tasks)
    name = args.out_name or f"eval_suite_{args.backend}" + ("" if args.tasks == "all" else "_" + "-".join(tasks))
    output = args.run_dir / name
    shutil.rmtree(output, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="paraxl-bench-eval-") as fresh:
        run = run_eval(args, Path(fresh), output)
    report = {"machine": machine(), "command": run.pop("command"), "run": run, **summarise(output, tasks, args)}
    args.results_dir.mkdir(parents=True, exist_ok=True)
    (args.results_dir / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (args.results_dir / f"{name}.md").write_text(markdown(report), encoding="utf-8")
    print(markdown(report))
    print(f"wrote {args.results_dir / name}.json and .md")


def run_eval(args: argparse.Namespace, fresh: Path, output: Path) -> dict[str, Any]:
    """``paraxl eval`` in its own process on an empty cache; wall time, peak RSS, its log lines."""
    if not args.cold and (cache_dir() / "models").is_dir():
        (fresh / "models").symlink_to((cache_dir() / "models").resolve(), target_is_directory=True)
    command = [sys.executable, "-m", "paraxl.cli.main", "eval", args.model, "--tasks", args.tasks]
    command += ["--data-dir", str(args.data_dir), "-o", str(output), "--backend", args.backend]
    command += ["--batch-size", str(args.batch_size)] if args.batch_size else []
    command += [] if args.plots else ["--no-plots"]
    env = {**os.environ, CACHE_ENV: str(fresh)}
    began = time.perf_counter()
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=args.max_seconds)
        code, stderr, timed_out = done.returncode, done.stderr, False
    except subprocess.TimeoutExpired as stopped:
        code, timed_out = None, True
        stderr = stopped.stderr.decode() if isinstance(stopped.stderr, bytes) else (stopped.stderr or "")
    wall = time.perf_counter() - began
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return {
        "command": " ".join(command[1:]).replace(str(ROOT) + "/", ""),
        "exit_code": code,
        "timed_out": timed_out,
        "wall_seconds": round(wall, 1),
        "peak_rss_gib": round(peak_kib / 2**20, 2),
        "backend_line": next((line for line in lines if "backend:" in line), None),
        "stderr_tail": lines[-5:] if code != 0 else [],
        "cold": args.cold,
    }


def summarise(output: Path, tasks: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """Per task: seconds, texts encoded, texts/s; every score against the reference."""
    rows: list[dict[str, Any]] = []
    comparisons: list[dict[str, Any]] = []
    for task in tasks:
        path = output / f"{task}.json"
        if not path.is_file():
            rows.append({"task": task, "finished": False})
            continue
        document = read_result(path)
        encoded = int(document.provenance.embeddings.get("encoded", 0))
        seconds = document.provenance.wall_seconds
        row: dict[str, Any] = {"task": task, "finished": True, "seconds": seconds, "texts_encoded": encoded}
        row |= {"texts_per_second": round(encoded / seconds, 1) if seconds else None, "backend": document.model.backend}
        reference_path = args.reference / f"{task}.json"
        if reference_path.is_file():
            found = compare_results(read_result(reference_path), document)
            comparisons += [_comparison_json(c) for c in found]
            row |= {"main_score": found[0].candidate_text, "reference": found[0].reference_text}
            row |= {"main_identical": found[0].identical, "main_difference": found[0].difference}
        rows.append(row)
    finished = [row for row in rows if row["finished"]]
    encoded = sum(row["texts_encoded"] for row in finished)
    seconds = sum(row["seconds"] for row in finished)
    main = [c for c in comparisons if c["name"] == "main"]
    return {
        "tasks": rows,
        "texts_encoded": encoded,
        "task_seconds": round(seconds, 1),
        "texts_per_second": round(encoded / seconds, 1) if seconds else None,
        "main_scores_identical": bool(main) and all(c["identical"] for c in main) and len(finished) == len(tasks),
        "other_scores_differing": [c for c in comparisons if c["name"] != "main" and not c["identical"]],
        "scores_compared": len(comparisons),
        "reference": str(args.reference.relative_to(ROOT) if args.reference.is_relative_to(ROOT) else args.reference),
    }


def _comparison_json(comparison: ScoreComparison) -> dict[str, Any]:
    return {
        "task": comparison.task,
        "name": comparison.name,
        "reference": comparison.reference_text,
        "candidate": comparison.candidate_text,
        "identical": comparison.identical,
        "difference": comparison.difference,
    }


def machine() -> dict[str, Any]:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": model,
        "cores": cores,
        "flags": [f for f in CPU_FLAGS if f in flags],
        "python": sys.version.split()[0],
    }


def markdown(report: dict[str, Any]) -> str:
    run, info = report["run"], report["machine"]
    verdict = "PASS" if report["main_scores_identical"] else "FAIL"
    lines = [
        f"# paraxl eval from an empty cache: {run['backend_line'] or 'backend not reported'}",
        "",
        f"`{report['command']}`",
        "",
        f"- machine: {info['cpu']}, {info['cores']} cores, flags {' '.join(info['flags']) or 'none of note'}",
        f"- wall {run['wall_seconds'] / 60:.1f} min ({run['wall_seconds']:.0f} s; "
        f"tasks {report['task_seconds']:.0f} s), peak RSS {run['peak_rss_gib']} GiB, exit code {run['exit_code']}"
        + (" (time limit hit)" if run["timed_out"] else ""),
        f"- {report['texts_encoded']:,} texts encoded, {report['texts_per_second']} texts/s over the tasks",
        f"- main scores identical to `{report['reference']}` at reported precision: **{verdict}**; "
        f"{len(report['other_scores_differing'])} of {report['scores_compared']} scores in all print differently",
        "",
        "| task | seconds | texts encoded | texts/s | main score | reference | identical |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in report["tasks"]:
        if not row["finished"]:
            lines.append(f"| {row['task']} | not finished | | | | | |")
            continue
        lines.append(
            f"| {row['task']} | {row['seconds']:.1f} | {row['texts_encoded']:,} | {row['texts_per_second']} | "
            f"{row.get('main_score', '–')} | {row.get('reference', '–')} | {row.get('main_identical', '–')} |"
        )
    if report["other_scores_differing"]:
        lines += ["", "Other scores that print differently (task, score, reference -> this run):", ""]
        lines += [
            f"- {c['task']} {c['name']}: {c['reference']} -> {c['candidate']}" for c in report["other_scores_differing"]
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
