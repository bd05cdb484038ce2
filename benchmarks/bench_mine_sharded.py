"""Sharded bitext mining (``paraxl mine-corpus``) against one-process mining: same output, time, peak memory.

Usage (the lead's run, alone on the machine):
    python benchmarks/bench_mine_sharded.py --n 100000 --dim 384 --shard-size 10000 --modes unsharded,local-1,local-2
Quick check (seconds):
    python benchmarks/bench_mine_sharded.py --n 2000 --shard-size 500 --name mine-sharded-check

Input: synthetic, comparable corpora of float32 vectors (no model): ``n`` rows in 50 clusters, the target
side the same rows with fresh noise, shuffled; both written as encode-corpus folders
(:func:`paraxl.corpus.vectors_folder.write_vectors_folder`). Each mode runs in its own process:
``unsharded`` loads both sides whole and calls ``ratio_margin_candidates(..., index_type="exact")``
(``paraxl mine``'s scoring with the exact search); ``local-N`` / ``ray-N`` run ``mine_corpus`` on that
engine. Reported: wall seconds, peak RSS of the mode's process and of its largest child (local workers),
and whether each output is identical (pairs and 6-decimal margins) to the unsharded one. Writes
``benchmarks/results/<name>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # Ray on loopback only

import numpy as np

from paraxl.evaluation.bench_report import cpu_info, present_flags, write_report

CPU_FLAGS = ("avx2", "fma", "avx512f")
JOB: dict[str, Any] = {"model": {"weights_fingerprint": "synthetic", "backend": "none"}, "prompt": None}


def build_inputs(n: int, dim: int, shard_size: int, folder: Path, seed: int = 0) -> None:
    from paraxl.corpus.vectors_folder import write_vectors_folder

    rng = np.random.default_rng(seed)
    base = rng.standard_normal((50, dim))[rng.integers(0, 50, n)] + 0.7 * rng.standard_normal((n, dim))
    source = (base + 0.3 * rng.standard_normal(base.shape)).astype(np.float32)
    target = (base + 0.3 * rng.standard_normal(base.shape))[rng.permutation(n)].astype(np.float32)
    write_vectors_folder(folder / "src", source, shard_size, JOB)
    write_vectors_folder(folder / "tgt", target, shard_size, JOB)


def run_mode(mode: str, folder: Path, output: Path) -> dict[str, Any]:
    """One mode in this process; its output TSV at ``output``."""
    start = time.perf_counter()
    if mode == "unsharded":
        from paraxl.corpus.mine import read_side
        from paraxl.io.outputs import write_tsv
        from paraxl.retrieval.margin import ratio_margin_candidates

        sides = [read_side(folder / name) for name in ("src", "tgt")]
        vectors = [np.concatenate([np.load(path) for path in side.shards]) for side in sides]
        found = ratio_margin_candidates(vectors[0], vectors[1], k=4, index_type="exact")
        rows = [
            [int(i), int(j), f"{s:.6f}"]
            for i, j, s in zip(found.source_index, found.target_index, found.score, strict=True)
        ]
        write_tsv(output, ["source_id", "target_id", "margin"], rows)
    else:
        from paraxl.corpus.mine import MineRequest, mine_corpus

        engine, workers = mode.split("-")
        # synthetic vectors have no input texts to add
        job = MineRequest(folder / "src", folder / "tgt", output, engine=engine, workers=int(workers), texts=False)
        mine_corpus(job)
    return {
        "mode": mode,
        "seconds": round(time.perf_counter() - start, 3),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_child_rss_mib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
    }


def markdown(document: dict[str, Any]) -> str:
    settings = document["settings"]
    lines = [
        f"# Sharded bitext mining: {settings['n']} x {settings['n']} vectors, dim {settings['dim']}, "
        f"shards of {settings['shard_size']}",
        "",
        f"CPU: {document['machine']['cpu']['model']} ({', '.join(present_flags(document['machine']['cpu']))}); "
        "input: synthetic comparable float32 vectors (50 clusters), k = 4, exact search.",
        "",
        "| mode | seconds | peak RSS (MiB) | largest child RSS (MiB) | identical to unsharded |",
        "|---|---|---|---|---|",
    ]
    for run in document["runs"]:
        lines.append(
            f"| {run['mode']} | {run['seconds']} | {run['peak_rss_mib']} | {run['peak_child_rss_mib']} "
            f"| {run.get('identical', '-')} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000, help="sentences per side")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--shard-size", type=int, default=10_000)
    parser.add_argument("--modes", default="unsharded,local-1,local-2", help="unsharded, local-N, ray-N")
    parser.add_argument("--name", default="mine-sharded")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "FOLDER", "OUTPUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_mode(args.child[0], Path(args.child[1]), Path(args.child[2]))))
        return
    document: dict[str, Any] = {
        "settings": {"n": args.n, "dim": args.dim, "shard_size": args.shard_size},
        "machine": {"cpu": cpu_info(CPU_FLAGS)},
        "runs": [],
    }
    stem = Path(__file__).parent / "results" / args.name
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        build_inputs(args.n, args.dim, args.shard_size, folder)
        outputs: dict[str, str] = {}
        for mode in [mode.strip() for mode in args.modes.split(",")]:
            output = folder / f"{mode}.tsv"
            child = [sys.executable, __file__, "--child", mode, str(folder), str(output)]
            finished = subprocess.run(child, check=True, capture_output=True, text=True)
            run = json.loads(finished.stdout.strip().splitlines()[-1])
            outputs[mode] = output.read_text(encoding="utf-8")
            if "unsharded" in outputs and mode != "unsharded":
                run["identical"] = outputs[mode] == outputs["unsharded"]
            run["pairs"] = outputs[mode].count("\n") - 1
            document["runs"].append(run)
            print(json.dumps(run), flush=True)
            write_report(stem, document, markdown(document))


if __name__ == "__main__":
    main()
