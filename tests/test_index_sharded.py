"""IVF-PQ and the sharded index build (paraxl.corpus.index_build): oracles against exact search and the
unsharded build, resuming, bad input, and `paraxl index build-sharded` + `paraxl search` through the CLI."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from paraxl.cli.main import app
from paraxl.corpus.embeddings_folder import shard_list
from paraxl.corpus.encode import CorpusRequest, encode_corpus
from paraxl.corpus.engines import run_mapper
from paraxl.corpus.index_build import ShardedBuildRequest, build_sharded
from paraxl.corpus.index_job import IndexShardResult, PopulateSettings, ShardIndexer, shard_index_name
from paraxl.corpus.vectors_folder import write_vectors_folder
from paraxl.errors import InputError
from paraxl.retrieval import build_index, exact_topk
from paraxl.serving.index import VectorIndex

from .tiny import save_tiny

runner = CliRunner()
DIM, SHARD = 32, 700


def clustered(count: int, seed: int, dim: int = DIM, clusters: int = 20) -> np.ndarray:
    """(count, dim) float32 unit rows around ``clusters`` random centres (what IVF and PQ are for)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    rows = centres[rng.integers(0, clusters, count)] + 0.35 * rng.standard_normal((count, dim))
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def write_embeddings(folder: Path, vectors: np.ndarray, shard: int = SHARD) -> Path:
    """An embeddings folder as `paraxl encode-corpus` writes it (no inputs: build with texts=False)."""
    job = {
        "model": {"weights_fingerprint": "f" * 64, "backend": "torch", "graph": None},
        "prompt": {"name": None, "text": ""},
        "dtype": "float32",
        "shard_size": shard,
        "inputs": [],
    }
    write_vectors_folder(folder, vectors, shard, job)
    return folder


def sharded(emb: Path, out: Path, index_type: str, **changes: Any) -> VectorIndex:
    settings: dict[str, Any] = {"index_type": index_type, "texts": False} | changes
    build_sharded(ShardedBuildRequest(emb, out, **settings))
    return VectorIndex.load(out)


def hits(index: VectorIndex, queries: np.ndarray, k: int = 10) -> tuple[list[list[str]], list[list[float]]]:
    results = index.search(queries, k)
    return [[hit.id for hit in row] for row in results], [[hit.score for hit in row] for row in results]


CORPUS = clustered(3000, seed=1)
QUERIES = clustered(40, seed=2)


# ------------------------------------------------------------------------------------------- IVF-PQ
def test_ivfpq_searching_every_cell_is_brute_force_over_its_reconstructions() -> None:
    index = build_index("ivfpq", CORPUS, 0, {"nlist": 16, "nprobe": 16, "pq_m": 8})
    scores, rows = index.search(QUERIES, 10)
    raw = index.raw  # type: ignore[attr-defined]
    raw.make_direct_map()
    decoded = raw.reconstruct_n(0, len(CORPUS))  # (n, dim): what the PQ codes stand for
    oracle_scores, _ = exact_topk(QUERIES, decoded, 10)
    np.testing.assert_allclose(scores, oracle_scores, atol=1e-5)
    # the returned rows are those that score so (ties aside): their decoded scores match row by row
    np.testing.assert_allclose(np.einsum("qd,qkd->qk", QUERIES, decoded[rows]), scores, atol=1e-5)
    assert index.params == {"nlist": 16, "nprobe": 16, "pq_m": 8, "nbits": 8, "train_size": 3000} | {
        "bytes_per_vector": 16
    }


def test_ivfpq_recall_against_exact_on_clustered_vectors() -> None:
    _, truth = exact_topk(QUERIES, CORPUS, 10)
    index = build_index("ivfpq", CORPUS, 0, {"nlist": 16, "nprobe": 16, "pq_m": 16})
    _, rows = index.search(QUERIES, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(rows.tolist(), truth.tolist(), strict=True)])
    assert recall >= 0.6  # 16-byte codes of 32-d vectors (measured 0.7x); a broken code would be ~0.01


def test_ivf_searching_every_cell_equals_exact_search() -> None:
    scores, rows = build_index("ivf", CORPUS, 0, {"nlist": 16, "nprobe": 16}).search(QUERIES, 10)
    exact_scores, exact_rows = exact_topk(QUERIES, CORPUS, 10)
    np.testing.assert_allclose(scores, exact_scores, atol=1e-5)
    assert (rows == exact_rows).mean() > 0.99


def test_ivfpq_bad_parameters_are_one_clear_error() -> None:
    with pytest.raises(InputError, match=r"pq_m=5 must divide the dimension 32 \(try 4\)"):
        build_index("ivfpq", CORPUS, 0, {"nlist": 4, "pq_m": 5})
    with pytest.raises(InputError, match=r"needs at least 256 vectors to train its codes, got 100"):
        build_index("ivfpq", CORPUS[:100], 0, {"nlist": 2})


def test_ivfpq_saves_adds_and_refuses_a_lossy_rebuild(tmp_path: Path) -> None:
    ids = [f"r{row}" for row in range(len(CORPUS))]
    index = VectorIndex.build(CORPUS[:2000], ids[:2000], index_type="ivfpq", nlist=16, nprobe=4, pq_m=8)
    index.add(CORPUS[2000:], ids[2000:])
    index.save(tmp_path / "ix")
    loaded = VectorIndex.load(tmp_path / "ix")
    assert loaded.info.backend_params["bytes_per_vector"] == 16 and len(loaded) == 3000
    assert hits(loaded, QUERIES) == hits(index, QUERIES)
    with pytest.raises(InputError, match="ivfpq index keeps compressed codes"):
        loaded.rebuild("flat")


# ----------------------------------------------------------------------------------- sharded build
@pytest.mark.parametrize(
    ("index_type", "params"),
    [("flat", {}), ("ivf", {"nlist": 16, "nprobe": 16}), ("ivfpq", {"nlist": 16, "nprobe": 4, "pq_m": 8})],
)
def test_sharded_build_equals_the_unsharded_one(tmp_path: Path, index_type: str, params: dict[str, Any]) -> None:
    emb = write_embeddings(tmp_path / "emb", CORPUS)
    built = sharded(emb, tmp_path / "ix", index_type, params=params, seed=3)
    whole = VectorIndex.build(CORPUS, [str(row) for row in range(len(CORPUS))], index_type=index_type, seed=3, **params)
    ids, scores = hits(built, QUERIES)
    whole_ids, whole_scores = hits(whole, QUERIES)
    assert ids == whole_ids and scores == whole_scores
    assert built.info.backend_params == whole.info.backend_params
    if index_type != "ivfpq":  # exhaustive: the exact search's answers
        exact_scores, _ = exact_topk(QUERIES, CORPUS, 10)
        np.testing.assert_allclose(scores, exact_scores, atol=1e-5)


def test_two_workers_build_the_same_index_as_one(tmp_path: Path) -> None:
    emb = write_embeddings(tmp_path / "emb", CORPUS)
    params = {"nlist": 16, "nprobe": 4, "pq_m": 8}
    one = sharded(emb, tmp_path / "one", "ivfpq", params=params)
    two = sharded(emb, tmp_path / "two", "ivfpq", params=params, workers=2)
    assert (tmp_path / "one" / "index.faiss").read_bytes() == (tmp_path / "two" / "index.faiss").read_bytes()
    assert hits(one, QUERIES) == hits(two, QUERIES)
    assert not (tmp_path / ".one.parts").exists()  # the work folder goes once the index is in place
    build = json.loads((tmp_path / "two" / "index.json").read_text())["build"]  # the build's provenance
    assert build["engine"] == "local" and build["workers"] == 2 and build["shards"] == 5
    assert build["shards_reused"] == 0 and sorted(build["seconds"]) == ["merge", "populate", "train"]
    assert sorted(build["shard_seconds"], key=int) == [str(s) for s in range(5)] and len(build["shard_workers"]) == 5
    # host:pid of the spawned workers, never this process (a worker that starts first may take every shard)
    workers = set(build["shard_workers"].values())
    assert 1 <= len(workers) <= 2 and not any(worker.endswith(f":{os.getpid()}") for worker in workers)


class Killed(Exception):
    """Stands for a kill of the build (the progress handler raises it after the third shard)."""


def test_a_killed_build_resumes_from_its_finished_shards(tmp_path: Path) -> None:
    emb = write_embeddings(tmp_path / "emb", CORPUS)
    params = {"nlist": 16, "nprobe": 16}
    reference = sharded(emb, tmp_path / "reference", "ivf", params=params)
    request = ShardedBuildRequest(emb, tmp_path / "ix", "ivf", params, texts=False)

    def killed_after_three(done: int, total: int) -> None:
        if done == 3:
            raise Killed

    with pytest.raises(Killed):
        build_sharded(request, killed_after_three)
    parts = tmp_path / ".ix.parts"
    assert sorted(path.name for path in parts.glob("shard-*.faiss")) == [shard_index_name(s) for s in range(3)]
    assert not (tmp_path / "ix").exists()
    seen: list[tuple[int, int]] = []
    summary = build_sharded(request, lambda done, total: seen.append((done, total)))
    assert summary.reused == 3 and seen == [(3, 5), (4, 5), (5, 5)]
    assert hits(VectorIndex.load(tmp_path / "ix"), QUERIES) == hits(reference, QUERIES)
    # killed again, then another build (another type) in the same place starts afresh, not from its shards
    with pytest.raises(Killed):
        build_sharded(replace(request, output=tmp_path / "iy"), killed_after_three)
    assert len(list((tmp_path / ".iy.parts").glob("shard-*.faiss"))) == 3
    assert build_sharded(ShardedBuildRequest(emb, tmp_path / "iy", "flat", texts=False)).reused == 0
    assert hits(VectorIndex.load(tmp_path / "iy"), QUERIES) == hits(sharded(emb, tmp_path / "flat", "flat"), QUERIES)


def test_bad_embeddings_folders_are_one_clear_error(tmp_path: Path) -> None:
    emb = write_embeddings(tmp_path / "emb", CORPUS)
    with pytest.raises(InputError, match="cannot be built from shards"):
        sharded(emb, tmp_path / "ix", "hnsw")
    with pytest.raises(InputError, match="unknown engine 'spark'; use one of local, ray"):
        sharded(emb, tmp_path / "ix", "flat", engine="spark")
    with pytest.raises(InputError, match="--ray-address applies to --engine ray only"):
        sharded(emb, tmp_path / "ix", "ivf", ray_address="auto")
    with pytest.raises(InputError, match="--cpus-per-worker must be at least 1, got 0"):
        sharded(emb, tmp_path / "ix", "ivf", cpus_per_worker=0)
    # texts from inputs the manifest does not record: refused before any training (no work folder)
    with pytest.raises(InputError, match=r"manifest\.json: records no input texts"):
        sharded(emb, tmp_path / "ix", "ivf", texts=True, params={"nlist": 4})
    assert not (tmp_path / ".ix.parts").exists()
    np.save(emb / "shard-000001.ids.npy", np.arange(5, 5 + SHARD, dtype=np.int64))
    with pytest.raises(InputError, match=r"shard-000001.ids.npy: differs from its sha256"):
        sharded(emb, tmp_path / "ix", "flat")
    manifest = json.loads((emb / "manifest.json").read_text())
    manifest["shards"][2]["done"] = False
    (emb / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match=r"not complete \(1 of 5 shards pending\)"):
        sharded(emb, tmp_path / "ix", "flat")
    with pytest.raises(InputError, match=r"no manifest\.json"):
        sharded(tmp_path, tmp_path / "ix", "flat")


# ---------------------------------------------------------------------------------------- the CLI
def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_cli_build_sharded_then_search_finds_the_sentence(tiny_model_dir: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    sentences = [f"sentence number {n} about {word}" for n, word in enumerate(["cats", "dogs", "rain", "tea"] * 80)]
    corpus.write_text("\n".join(sentences) + "\n", encoding="utf-8")
    emb = tmp_path / "emb"
    request = CorpusRequest((str(corpus),), emb, str(tiny_model_dir), shard_size=100, cpus_per_worker=1)
    encode_corpus(request)
    other = save_tiny(tmp_path / "other", seed=7)
    code, _, err = run("index", "build-sharded", str(emb), "-o", str(tmp_path / "ix"), "-m", str(other))
    assert code == 2 and "embeddings were made by another model" in err and len(err.strip().splitlines()) == 1
    code, out, err = run(
        "index", "build-sharded", str(emb), "-o", str(tmp_path / "ix"), "-m", str(tiny_model_dir),
        "--index-type", "ivf", "--nlist", "4", "--workers", "2",
    )  # fmt: skip
    assert code == 0, err
    assert "indexed 320 vectors from 4 shards" in out and "bytes/vector" in out
    info = VectorIndex.load(tmp_path / "ix").info
    assert info.backend == "ivf" and info.model_fingerprint is not None and info.inference_backend == "torch"
    code, out, err = run("search", str(tmp_path / "ix"), sentences[123], "--json", "-k", "3", "--nprobe", "4")
    assert code == 0, err
    first = json.loads(out.splitlines()[0])
    assert first["text"] == sentences[123] and first["id"] == "123"


def test_an_unreadable_trained_index_is_each_shard_s_error(tmp_path: Path) -> None:
    # the workers cannot start (no trained index): one line per shard, not a broken pool retried 3 times
    emb = write_embeddings(tmp_path / "emb", CORPUS)
    settings = PopulateSettings(str(emb), str(tmp_path), str(tmp_path / "gone.faiss"), "ivf")
    shards = [shard.to_json() for shard in shard_list(json.loads((emb / "manifest.json").read_text()))]
    results: list[IndexShardResult] = []

    def keep(text: str) -> bool:
        results.append(IndexShardResult.from_json(text))
        return False  # go on: every shard's result is wanted

    run_mapper("local", ShardIndexer, settings, shards[:3], 2, keep)
    assert sorted(result.index for result in results) == [0, 1, 2]
    for result in results:
        assert str(result.input_error()).startswith(f"{tmp_path / 'gone.faiss'}: unreadable trained index")
