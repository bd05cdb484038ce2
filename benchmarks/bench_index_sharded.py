"""Sharded IVF-PQ index over synthetic or real vectors: build time, bytes per vector, latency, recall@10.

Usage (the lead's run, alone on the machine):
    python benchmarks/bench_index_sharded.py --sizes 1000000,10000000 --workers 4
Quick check (seconds):
    python benchmarks/bench_index_sharded.py --sizes 20000 --shard-size 5000 --nprobe 4,16 --name index-sharded-check

Per size N: N 384-d float32 unit vectors from ``--data``: ``clustered`` (seeded, ``--clusters`` Gaussian
centres plus per-coordinate noise ``--noise``: within a cluster the points are isotropic, so the exact top 10
is nearly a random draw from the cluster, a worst case for any approximate index), ``lowrank`` (seeded,
a ``--latent-dim``-dimensional Gaussian embedded in 384-d plus the same noise: neighbourhoods with
structure at every scale, closer to sentence embeddings) or ``real:FOLDER`` (an embedding cache folder
of ``paraxl eval``, ``shard-*.npz`` with ``vectors``: real sentence embeddings; the queries are rows held
out of the corpus; N at most the folder's rows minus the queries). They are written shard by shard as an
embeddings folder (the layout of ``paraxl encode-corpus``),
never all in memory (10M float32 rows are 15 GB: on disk only). Then ``paraxl.corpus.index_build``
builds an IVF-PQ index from it (train on the seeded sample, populate per shard with ``--workers``
processes, merge with FAISS's merge_from) and times each step. Queries: ``--queries`` more vectors of
the same distribution; the exact top-10 of each is computed blockwise, shard by shard (a running top-k),
and recall@10 = |approximate top-10 ∩ exact top-10| / 10, averaged. Latency: one query at a time
(k=10) through FAISS, after a warm-up, per nprobe; p50 and p99 in milliseconds. Peak RSS is this
process's and its worker processes' maximum (``getrusage``). Writes ``benchmarks/results/<name>.json``
and ``.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from paraxl.corpus.index_build import ShardedBuildRequest, build_sharded
from paraxl.evaluation.bench_report import cpu_info, present_flags, write_report
from paraxl.retrieval.faiss_index import faiss_module

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
FLAGS = ("avx2", "avx512f", "avx512_vnni", "amx_tile")
DIM = 384


QUERY_STREAM = 10**9  # the seed part of the queries' generator (corpus shards use their shard number)


def unit_rows(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


class VectorSource:
    """The benchmark's vectors: ``rows(stream, first, count)`` -> (count, 384) float32 unit rows.

    ``stream`` is the shard number (corpus) or ``QUERY_STREAM`` (queries); synthetic rows are seeded by
    (seed, stream), so a shard's rows do not depend on the shard size of another run.
    """

    def __init__(self, args: argparse.Namespace) -> None:
        self.kind, self.seed, self.noise = args.data, args.seed, args.noise
        rng = np.random.default_rng(args.seed)
        self.centres = rng.standard_normal((args.clusters, DIM))  # (clusters, 384), norm ~ sqrt(384)
        # (latent, 384): each latent direction of unit norm, so a row's signal norm is ~ sqrt(latent)
        self.basis = rng.standard_normal((args.latent_dim, DIM)) / np.sqrt(DIM)
        self.real: np.ndarray | None = None
        if self.kind.startswith("real:"):
            self.real = read_cache_vectors(Path(self.kind.removeprefix("real:")))
        elif self.kind not in ("clustered", "lowrank"):
            raise SystemExit(f"--data {self.kind!r}: use clustered, lowrank or real:FOLDER")
        self.queries = args.queries

    def describe(self) -> str:
        if self.real is not None:
            return f"real sentence embeddings ({len(self.real):,} distinct rows of {self.kind.removeprefix('real:')})"
        if self.kind == "clustered":
            return f"random clustered vectors ({len(self.centres)} centres, noise {self.noise})"
        return f"random low-rank vectors (a {len(self.basis)}-d Gaussian in {DIM}-d, noise {self.noise})"

    def check_size(self, size: int) -> None:
        if self.real is not None and size + self.queries > len(self.real):
            raise SystemExit(
                f"--sizes {size}: the real vectors hold {len(self.real)} rows, {self.queries} of them queries"
            )

    def rows(self, stream: int, first: int, count: int) -> np.ndarray:
        if self.real is not None:  # queries: the last rows, never in a corpus (check_size)
            start = len(self.real) - self.queries if stream == QUERY_STREAM else first
            return self.real[start : start + count]
        rng = np.random.default_rng([self.seed, stream])
        if self.kind == "clustered":
            signal = self.centres[rng.integers(0, len(self.centres), count)]
        else:
            signal = rng.standard_normal((count, len(self.basis))) @ self.basis
        return unit_rows(signal + self.noise * rng.standard_normal((count, DIM)))


def read_cache_vectors(folder: Path) -> np.ndarray:
    """Every distinct row of an embedding cache folder's ``shard-*.npz``, unit-normalised, in a seeded order."""
    parts = []
    for shard in sorted(folder.glob("shard-*.npz")):
        with np.load(shard) as data:
            parts.append(np.asarray(data["vectors"], dtype=np.float32))
    if not parts:
        raise SystemExit(f"{folder}: no shard-*.npz files")
    vectors = np.unique(np.concatenate(parts), axis=0)  # (n, dim): one row per distinct text vector
    if vectors.shape[1] != DIM:
        raise SystemExit(f"{folder}: {vectors.shape[1]}-d vectors, this benchmark is {DIM}-d")
    return unit_rows(vectors[np.random.default_rng(0).permutation(len(vectors))])


def write_corpus(folder: Path, size: int, shard_size: int, source: VectorSource) -> None:
    """An embeddings folder of ``size`` vectors, shard by shard (memory: one shard), seeded per shard."""
    folder.mkdir(parents=True)
    shards = []
    for index, first in enumerate(range(0, size, shard_size)):
        rows = min(shard_size, size - first)
        vectors = source.rows(index, first, rows)
        names = (f"shard-{index:06d}.npy", f"shard-{index:06d}.ids.npy")
        np.save(folder / names[0], vectors)
        np.save(folder / names[1], np.arange(first, first + rows, dtype=np.int64))
        sums = [_sha256(folder / name) for name in names]
        shards.append(
            {"index": index, "input": 0, "first_row": first, "rows": rows, "first_line": first + 1}
            | {"first_id": first, "done": True, "embeddings": names[0], "embeddings_sha256": sums[0]}
            | {"ids": names[1], "ids_sha256": sums[1]}
        )
    job = {
        "model": {"weights_fingerprint": f"benchmark-{source.kind}", "backend": "torch", "graph": None},
        "prompt": {"name": None, "text": ""},
        "dtype": "float32",
        "shard_size": shard_size,
        "inputs": [],
    }
    manifest = {"format": "paraxl-embeddings", "version": 1, "job": job, "rows": size, "dimension": DIM}
    manifest |= {"complete": True, "shards": shards, "provenance": {"model_spec": None}}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def exact_top10(folder: Path, queries: np.ndarray) -> np.ndarray:
    """(q, 10) corpus rows of each query's exact top 10, shard by shard (a running top-k)."""
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    best_scores = np.full((len(queries), 10), -np.inf, dtype=np.float32)
    best_rows = np.zeros((len(queries), 10), dtype=np.int64)
    for shard in manifest["shards"]:
        vectors = np.load(folder / shard["embeddings"], mmap_mode="r")
        for start in range(0, len(vectors), 50_000):  # (q, 50k) float32 scores: 200 MB at q = 1000
            block = np.asarray(vectors[start : start + 50_000])
            scores = queries @ block.T
            rows = np.arange(len(block)) + shard["first_id"] + start
            top = np.argpartition(-scores, 9, axis=1)[:, :10]
            all_scores = np.concatenate([best_scores, np.take_along_axis(scores, top, 1)], axis=1)
            all_rows = np.concatenate([best_rows, rows[top]], axis=1)
            keep = np.argsort(-all_scores, axis=1, kind="stable")[:, :10]
            best_scores, best_rows = np.take_along_axis(all_scores, keep, 1), np.take_along_axis(all_rows, keep, 1)
    return best_rows


def search_stats(index: Any, queries: np.ndarray, truth: np.ndarray, nprobe: int) -> dict[str, float]:
    """recall@10 (batch search) and single-query latency p50/p99 (ms) at ``nprobe``."""
    index.nprobe = nprobe
    _, found = index.search(queries, 10)
    recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found.tolist(), truth.tolist(), strict=True)]))
    for query in queries[:20]:  # warm-up
        index.search(query[None, :], 10)
    times = []
    for query in queries:
        start = time.perf_counter()
        index.search(query[None, :], 10)
        times.append(time.perf_counter() - start)
    return {
        "nprobe": nprobe,
        "recall_at_10": round(recall, 4),
        "p50_ms": round(1000 * float(np.percentile(times, 50)), 3),
        "p99_ms": round(1000 * float(np.percentile(times, 99)), 3),
    }


def run_size(size: int, args: argparse.Namespace, source: VectorSource, scratch: Path) -> dict[str, Any]:
    source.check_size(size)
    queries = source.rows(QUERY_STREAM, 0, args.queries)
    emb, out = scratch / f"emb-{size}", scratch / f"index-{size}"
    start = time.perf_counter()
    write_corpus(emb, size, args.shard_size, source)
    generated = time.perf_counter() - start
    params: dict[str, object] = {"pq_m": args.pq_m} | ({"nlist": args.nlist} if args.nlist else {})
    summary = build_sharded(
        ShardedBuildRequest(emb, out, "ivfpq", params, seed=args.seed, workers=args.workers, texts=False)
    )
    start = time.perf_counter()
    truth = exact_top10(emb, queries)
    exact_seconds = time.perf_counter() - start
    faiss = faiss_module()
    index = faiss.read_index(str(out / "index.faiss"))
    searches = [search_stats(index, queries, truth, nprobe) for nprobe in args.nprobe]
    row = {
        "size": size,
        "shards": summary.shards,
        "params": summary.params,
        "build_seconds": summary.seconds,
        "bytes_per_vector": summary.bytes_per_vector,
        "index_file_bytes": summary.file_bytes,
        "generate_seconds": round(generated, 2),
        "exact_seconds": round(exact_seconds, 2),
        "search": searches,
    }
    del index
    shutil.rmtree(emb, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    return row


def markdown(document: dict[str, Any]) -> str:
    cpu = document["cpu"]
    lines = [
        f"# Sharded IVF-PQ index ({document['name']})",
        "",
        f"CPU: {cpu['model']} ({cpu['physical_cores']} physical cores, {cpu['available_cpus']} CPUs usable), "
        f"flags: {', '.join(present_flags(cpu)) or 'none of ' + ', '.join(FLAGS)}; FAISS {document['faiss']}, "
        f"{document['workers']} populate workers. {DIM}-d float32 unit vectors: {document['data']}; "
        f"{document['queries']} queries, k = 10; "
        "latency: one query at a time; recall@10 against the exact top 10.",
        "",
        "| vectors | nlist | pq_m | train s | populate s | merge s | bytes/vector | index MiB "
        "| nprobe | p50 ms | p99 ms | recall@10 |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in document["runs"]:
        seconds, params = row["build_seconds"], row["params"]
        for search in row["search"]:
            lines.append(
                f"| {row['size']:,} | {params['nlist']} | {params['pq_m']} | {seconds['train']:.1f} "
                f"| {seconds['populate']:.1f} | {seconds['merge']:.1f} | {row['bytes_per_vector']} "
                f"| {row['index_file_bytes'] / 2**20:.1f} | {search['nprobe']} | {search['p50_ms']:.3f} "
                f"| {search['p99_ms']:.3f} | {search['recall_at_10']:.3f} |"
            )
    lines += ["", f"Peak RSS (this process / its workers): {document['peak_rss_mib']} MiB.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000", help="comma-separated corpus sizes (e.g. 1000000,10000000)")
    parser.add_argument("--shard-size", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--nlist", type=int, default=0, help="0: the default ~4·sqrt(n)")
    parser.add_argument("--pq-m", type=int, default=48)
    parser.add_argument("--nprobe", default="16,64", help="comma-separated nprobe values")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--data", default="clustered", help="clustered, lowrank or real:FOLDER (see above)")
    parser.add_argument("--latent-dim", type=int, default=24, help="lowrank: the latent Gaussian's dimension")
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--noise", type=float, default=0.05, help="per-coordinate noise around a unit-scale centre")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scratch", type=Path, default=None, help="folder for the shards (default: a temp folder)")
    parser.add_argument("--name", default="index-sharded")
    args = parser.parse_args()
    args.nprobe = [int(value) for value in args.nprobe.split(",")]
    faiss = faiss_module()
    source = VectorSource(args)
    document: dict[str, Any] = {
        "name": args.name,
        "cpu": cpu_info(FLAGS),
        "platform": platform.platform(),
        "faiss": faiss.__version__,
        "workers": args.workers,
        "data": source.describe(),
        "clusters": args.clusters,
        "noise": args.noise,
        "latent_dim": args.latent_dim,
        "queries": args.queries,
        "runs": [],
    }
    with tempfile.TemporaryDirectory(dir=args.scratch) as scratch:
        for size in (int(value) for value in args.sizes.split(",")):
            document["runs"].append(run_size(size, args, source, Path(scratch)))
            rss = [
                resource.getrusage(who).ru_maxrss // 1024 for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
            ]
            document["peak_rss_mib"] = rss
            write_report(RESULTS / args.name, document, markdown(document))
            print(json.dumps(document["runs"][-1]))


if __name__ == "__main__":
    main()
