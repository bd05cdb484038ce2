"""Vector search benchmark: paraxl's VectorIndex with exact / flat / ivf / hnsw at 100k and 1M vectors.

Usage (the full run; 1M x 384 float32 is 1.5 GB, peak about 2 copies + the HNSW graph):
    python benchmarks/bench_search.py --sizes 100000,1000000 --queries 1000
Quick check:
    python benchmarks/bench_search.py --sizes 20000 --queries 300 --name search-check
Real embeddings (any (n, 384) .npy, e.g. from ``paraxl encode``; queries are held-out rows):
    python benchmarks/bench_search.py --data real --real embeddings.npy --sizes 200000

Data: random 384-d unit vectors. ``clustered`` (the default, closer to sentence embeddings):
points around 1,000 random unit centres, point = centre + N(0, spread^2/dim) per coordinate with
spread 1.0, then normalised (cosine to its centre ~0.7, to a same-cluster point ~0.5, to another
cluster's ~0). ``uniform``: isotropic Gaussian directions, ANN's worst case (no neighbourhood
structure); run only up to ``--uniform-max-size`` (default 100k) because at 1M it doubles the run
and adds nothing new. Queries are drawn the same way from another seed stream, never from the corpus.

Per index type and search setting: build time; index file size (``faiss.write_index``, which is
``len(faiss.serialize_index)``; ``vectors.npy`` for exact) and the RSS growth while building; p50/p99
latency of single queries (one at a time, through ``VectorIndex.search`` with k=10, so including
the SearchHit objects); throughput of one batch call with all queries; recall@10 against exact
neighbours computed by FAISS brute force (``faiss.knn``, inner product, in batches). Each
(size, data, index type) runs in its own process so memory is measured from a clean start.

Writes ``benchmarks/results/search.json`` and ``benchmarks/results/search.md`` (after every run,
so an interrupted benchmark keeps what it measured).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
K = 10
CHUNK = 1 << 16


def make_vectors(count: int, dim: int, kind: str, seed: int, stream: int, centres: int, spread: float) -> np.ndarray:
    """``count`` unit rows (float32), generated in chunks so only the result is held in memory."""
    out = np.empty((count, dim), dtype=np.float32)
    middle = np.random.default_rng([seed, 99]).standard_normal((centres, dim)).astype(np.float32)
    middle /= np.linalg.norm(middle, axis=1, keepdims=True)
    rng = np.random.default_rng([seed, stream])
    for start in range(0, count, CHUNK):
        size = min(CHUNK, count - start)
        noise = rng.standard_normal((size, dim), dtype=np.float32)
        block = noise if kind == "uniform" else middle[rng.integers(0, centres, size)] + spread / np.sqrt(dim) * noise
        out[start : start + size] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def rss_mib() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def real_vectors(path: str, count: int, queries: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Corpus and held-out queries from an (n, dim) ``.npy`` of real embeddings (e.g. ``paraxl encode``)."""
    stored = np.load(path, mmap_mode="r", allow_pickle=False)
    if count + queries > stored.shape[0]:
        raise SystemExit(f"{path} holds {stored.shape[0]} vectors; --sizes {count} + --queries {queries} need more")
    rows = np.random.default_rng(seed).permutation(stored.shape[0])[: queries + count]
    picked = np.asarray(stored[np.sort(rows)], dtype=np.float32)  # sorted: sequential reads of the file
    picked = picked[np.random.default_rng(seed + 1).permutation(len(picked))]
    picked /= np.linalg.norm(picked, axis=1, keepdims=True)
    return picked[queries:], picked[:queries]


def trim_heap() -> None:
    """Give freed heap pages back to the OS, so that RSS growth measures the index, not old temporaries."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:  # not glibc
        pass


def data_for(config: dict) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[type-arg]
    if config["data"] == "real":
        return real_vectors(config["real"], config["size"], config["queries"], config["seed"])
    args = (config["dim"], config["data"], config["seed"])
    corpus = make_vectors(config["size"], *args, 0, config["centres"], config["spread"])
    queries = make_vectors(config["queries"], *args, 1, config["centres"], config["spread"])
    return corpus, queries


def child_truth(config: dict) -> dict:  # type: ignore[type-arg]
    """Exact top-k rows of every query (FAISS brute force), saved for the index children."""
    import faiss

    faiss.omp_set_num_threads(config["threads"])
    corpus, queries = data_for(config)
    start = time.perf_counter()
    rows = np.concatenate([faiss.knn(queries[i : i + 100], corpus, K, metric=faiss.METRIC_INNER_PRODUCT)[1]
                           for i in range(0, len(queries), 100)])  # fmt: skip
    np.save(config["truth_file"], rows.astype(np.int64))
    return {"truth_seconds": time.perf_counter() - start}


def child_index(config: dict) -> dict:  # type: ignore[type-arg]
    """Build one index type over the corpus and measure it under each search setting."""
    import faiss
    from threadpoolctl import threadpool_limits

    from paraxl.serving.index import VectorIndex

    faiss.omp_set_num_threads(config["threads"])
    threadpool_limits(config["threads"])  # numpy's BLAS, for the exact backend
    corpus, queries = data_for(config)
    truth = np.load(config["truth_file"])
    ids = [str(row) for row in range(len(corpus))]
    trim_heap()
    before = rss_mib()
    start = time.perf_counter()
    index = VectorIndex.build(corpus, ids, None, config["backend"], **config["build_params"])
    build_seconds = time.perf_counter() - start
    grown = rss_mib() - before
    del corpus  # FAISS holds its own copy; the exact backend a normalised one
    settings = []
    for search_params in config["search_settings"]:
        if search_params:
            index.set_search_params(**search_params)
        index.search(queries[:10], K)  # warm-up
        latencies = []
        for i in range(min(config["latency_queries"], len(queries))):
            tick = time.perf_counter()
            index.search(queries[i : i + 1], K)
            latencies.append(time.perf_counter() - tick)
        tick = time.perf_counter()
        batch = index.search(queries, K)
        batch_seconds = time.perf_counter() - tick
        found = [[int(hit.id) for hit in hits] for hits in batch]
        recall = float(np.mean([len(set(f) & set(t)) / K for f, t in zip(found, truth.tolist(), strict=True)]))
        settings.append(
            {
                "search_params": index.info.backend_params,
                "p50_ms": float(np.percentile(latencies, 50) * 1000),
                "p99_ms": float(np.percentile(latencies, 99) * 1000),
                "batch_queries_per_second": len(queries) / batch_seconds,
                "recall_at_10": recall,
            }
        )
    with tempfile.TemporaryDirectory(dir=config["scratch"]) as scratch:
        folder = Path(scratch) / "ix"
        tick = time.perf_counter()
        index.save(folder)
        save_seconds = time.perf_counter() - tick
        data_file = folder / ("vectors.npy" if index.info.backend == "exact" else "index.faiss")
        index_bytes = data_file.stat().st_size
        folder_bytes = sum(path.stat().st_size for path in folder.iterdir())
        backend_params = index.info.backend_params
        del index
        tick = time.perf_counter()
        VectorIndex.load(folder)
        load_seconds = time.perf_counter() - tick
    return {
        "build_seconds": build_seconds,
        "build_params": backend_params,
        "index_bytes": index_bytes,
        "folder_bytes": folder_bytes,
        "rss_growth_mib": grown,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "save_seconds": save_seconds,
        "load_seconds": load_seconds,
        "settings": settings,
    }


def in_child(kind: str, config: dict) -> dict:  # type: ignore[type-arg]
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, json.dumps(config)], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000", help="corpus sizes, comma-separated")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--latency-queries", type=int, default=None, help="single-query timings (default: all)")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="FAISS/BLAS threads")
    parser.add_argument("--data", default="clustered,uniform", help="clustered, uniform and/or real (needs --real)")
    parser.add_argument("--real", help="a .npy of real embeddings for --data real (queries are held-out rows)")
    parser.add_argument("--uniform-max-size", type=int, default=100_000)
    parser.add_argument("--centres", type=int, default=1000)
    parser.add_argument("--spread", type=float, default=1.0)
    parser.add_argument("--backends", default="exact,flat,ivf,hnsw")
    parser.add_argument("--nprobe", default="8,16,32,64", help="ivf search settings")
    parser.add_argument("--ef-search", default="32,64,128,256", help="hnsw search settings")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default="search", help="results file name (results/NAME.json, NAME.md)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, config = args.child
        print(json.dumps((child_truth if kind == "truth" else child_index)(json.loads(config))))
        return

    import faiss

    if "real" in args.data.split(","):
        if not args.real:
            raise SystemExit("--data real needs --real FILE.npy")
        args.dim = int(np.load(args.real, mmap_mode="r", allow_pickle=False).shape[1])
    settings_for = {
        "exact": [{}],
        "flat": [{}],
        "ivf": [{"nprobe": int(v)} for v in args.nprobe.split(",")],
        "hnsw": [{"ef_search": int(v)} for v in args.ef_search.split(",")],
    }
    result: dict = {  # type: ignore[type-arg]
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"faiss {faiss.__version__}, numpy {np.__version__}",
        "threads": args.threads,
        "dim": args.dim,
        "queries": args.queries,
        "k": K,
        "data": {"centres": args.centres, "spread": args.spread, "seed": args.seed, "real": args.real},
        "runs": [],
    }
    RESULTS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        for size in (int(s) for s in args.sizes.split(",")):
            for data in args.data.split(","):
                if data == "uniform" and size > args.uniform_max_size:
                    continue
                config = {
                    "size": size, "dim": args.dim, "data": data, "seed": args.seed, "queries": args.queries,
                    "centres": args.centres, "spread": args.spread, "threads": args.threads,
                    "truth_file": str(Path(scratch) / f"truth-{size}-{data}.npy"), "scratch": scratch,
                    "latency_queries": args.latency_queries or args.queries, "real": args.real,
                }  # fmt: skip
                truth = in_child("truth", config)
                for backend in args.backends.split(","):
                    print(f"{size} {data} {backend} ...", file=sys.stderr, flush=True)
                    measured = in_child(
                        "index",
                        {**config, "backend": backend, "build_params": {}, "search_settings": settings_for[backend]},
                    )
                    result["runs"].append({"size": size, "data": data, "backend": backend, **truth, **measured})
                    (RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
                    (RESULTS / f"{args.name}.md").write_text(render(result))
    print(render(result))


def render(result: dict) -> str:  # type: ignore[type-arg]
    rows = [
        "| vectors | data | index | build params | search params | build s | index file MiB | RSS growth MiB "
        "| p50 ms | p99 ms | batch queries/s | recall@10 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in result["runs"]:
        search_keys = {"nprobe", "ef_search"}
        build = ", ".join(f"{k}={v}" for k, v in run["build_params"].items() if k not in search_keys) or "-"
        for setting in run["settings"]:
            params = setting["search_params"]
            search = ", ".join(f"{k}={v}" for k, v in params.items() if k in search_keys) or "-"
            rows.append(
                f"| {run['size']:,} | {run['data']} | {run['backend']} | {build} | {search} | "
                f"{run['build_seconds']:.1f} | {run['index_bytes'] / 2**20:.0f} | {run['rss_growth_mib']:.0f} | "
                f"{setting['p50_ms']:.3f} | {setting['p99_ms']:.3f} | {setting['batch_queries_per_second']:,.0f} | "
                f"{setting['recall_at_10']:.3f} |"
            )
    data = result["data"]
    header = (
        f"Machine: {result['machine']} (threads {result['threads']}); {result['dim']}-d unit vectors, "
        f"{result['queries']} queries, k={result['k']}. clustered = around {data['centres']} random centres, "
        f"spread {data['spread']}; uniform = isotropic"
        + (f"; real = rows of {Path(data['real']).name}, queries held out" if data.get("real") else "")
        + ". Recall against FAISS brute force; latency = one query "
        "per `VectorIndex.search` call.\n\n"
    )
    return header + "\n".join(rows) + "\n"


if __name__ == "__main__":
    main()
