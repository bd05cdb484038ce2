"""Sharded bitext mining: the sharded exact kNN against knn(..., "exact"), mine-corpus against paraxl mine."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from paraxl.cli.main import app
from paraxl.corpus import mine as mine_module
from paraxl.corpus.encode import encode_corpus
from paraxl.corpus.engines import run_mapper
from paraxl.corpus.mine import MineRequest, mine_corpus
from paraxl.corpus.mine_job import KnnMapper, KnnResult, KnnSettings, KnnTask
from paraxl.corpus.vectors_folder import write_vectors_folder
from paraxl.errors import InputError
from paraxl.io import locks
from paraxl.mining.comparability import comparability_warning
from paraxl.retrieval import sharded_knn as sharded_knn_module
from paraxl.retrieval import topk
from paraxl.retrieval.margin import MiningCandidates, margin_candidates, ratio_margin_candidates
from paraxl.retrieval.sharded_knn import ShardRows, aligned_range, sharded_knn
from paraxl.retrieval.topk import knn

from .test_corpus_encode import request

JOB: dict[str, Any] = {"model": {"weights_fingerprint": "synthetic", "backend": "none"}, "prompt": None}


def shard_files(folder: Path, vectors: np.ndarray, size: int) -> ShardRows:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number, first in enumerate(range(0, len(vectors), size)):
        paths.append(folder / f"{number}.npy")
        np.save(paths[-1], vectors[first : first + size])
    return ShardRows(paths)


def search_all(queries: ShardRows, query_size: int, corpus: ShardRows, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Every query shard's task (block-aligned), concatenated in order: what the mining job merges."""
    parts = []
    for first in range(0, queries.rows, query_size):
        start, stop = aligned_range(first, min(first + query_size, queries.rows), queries.rows, corpus.rows)
        parts.append(sharded_knn(queries, start, stop, corpus, k))
    return np.concatenate([part[0] for part in parts]), np.concatenate([part[1] for part in parts])


def pairs(n: int, m: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Float32 queries and corpus with duplicate rows (exact ties) and a query equal to a duplicated row."""
    rng = np.random.default_rng(seed)
    queries = rng.standard_normal((n, d)).astype(np.float32)
    corpus = rng.standard_normal((m, d)).astype(np.float32)
    corpus[[10, 40, m - 1]] = corpus[3]
    queries[[0, n - 1]] = corpus[3]
    return queries, corpus


@pytest.mark.parametrize("k", [1, 4, 13])
def test_sharded_knn_is_bitwise_the_exact_knn(tmp_path: Path, k: int) -> None:
    queries, corpus = pairs(203, 157, 24, k)
    expected = knn(queries, corpus, k, "exact")
    for query_size, corpus_size in [(1, 1), (5, 3), (64, 10), (203, 157), (7, 200)]:  # k > shard included
        found = search_all(
            shard_files(tmp_path / f"q{query_size}", queries, query_size),
            query_size,
            shard_files(tmp_path / f"c{corpus_size}-{query_size}", corpus, corpus_size),
            k,
        )
        assert np.array_equal(found[0], expected[0]) and np.array_equal(found[1], expected[1])
    assert (expected[1][0, :3] == [3, 10, 40]).all() or k < 3  # the ties, lower index first


def test_tiles_and_query_blocks_match_the_tiled_knn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # corpora above the tile size: several tiles (spanning shards) and several query blocks per task
    monkeypatch.setattr(topk, "CORPUS_TILE", 14_000)
    queries, corpus = pairs(1500, 30_000, 8, 0)
    assert topk.query_block_rows(30_000) == 299
    expected = knn(queries, corpus, 4, "exact")
    found = search_all(shard_files(tmp_path / "q", queries, 310), 310, shard_files(tmp_path / "c", corpus, 4500), 4)
    assert np.array_equal(found[0], expected[0]) and np.array_equal(found[1], expected[1])
    # and the tiled search is the exact top-k (same neighbours as one brute-force pass, cosines to rounding)
    whole = topk.exact_topk(*(x / np.linalg.norm(x, axis=1, keepdims=True) for x in (queries, corpus)), 4)
    np.testing.assert_allclose(expected[0], whole[0], atol=1e-6)


def mine_synthetic(tmp_path: Path, source: np.ndarray, target: np.ndarray, size: int, **options: Any) -> Path:
    write_vectors_folder(tmp_path / "src", source, size, JOB)
    write_vectors_folder(tmp_path / "tgt", target, size, JOB)
    output = tmp_path / f"pairs-{options.get('engine', 'local')}-{options.get('workers', 1)}.tsv"
    mine_corpus(MineRequest(tmp_path / "src", tmp_path / "tgt", output, **({"texts": False} | options)))
    return output


def comparable(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Shared rows with noise, the target side shuffled, in 20 clusters (float32)."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((20, d))[rng.integers(0, 20, n)] + 0.7 * rng.standard_normal((n, d))
    source = base + 0.3 * rng.standard_normal(base.shape)
    target = (base + 0.3 * rng.standard_normal(base.shape))[rng.permutation(n)]
    return source.astype(np.float32), target[: n - 17].astype(np.float32)


def test_sharded_mining_equals_ratio_margin_candidates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source, target = comparable(230, 32, 1)
    expected = ratio_margin_candidates(source, target, k=4, index_type="exact")
    scored: list[MiningCandidates] = []  # what the driver scored, before the TSV rounds it

    def keep(*tables: np.ndarray) -> MiningCandidates:
        scored.append(margin_candidates(*tables))
        return scored[-1]

    monkeypatch.setattr(mine_module, "margin_candidates", keep)
    output = mine_synthetic(tmp_path, source, target, 37, k=4)
    assert scored[0].score.dtype == np.float64 and np.array_equal(scored[0].score, expected.score)
    assert np.array_equal(scored[0].source_index, expected.source_index)
    assert np.array_equal(scored[0].target_index, expected.target_index)
    lines = output.read_text().splitlines()
    assert lines[0] == "source_id\ttarget_id\tmargin" and len(lines) == len(expected) + 1
    want = [
        f"{i}\t{j}\t{s:.6f}"
        for i, j, s in zip(expected.source_index, expected.target_index, expected.score, strict=True)
    ]
    assert lines[1:] == want
    record = json.loads(output.with_suffix(".json").read_text())
    assert record["shards"] == {"source": 7, "target": 6} and record["run"]["engine"] == "local"
    assert record["comparability_warning"] is None and not output.with_name("pairs-local-1.tsv.work").exists()
    # 2 workers, query blocks of 8 rows: a task per shard (7 + 6; with the default blocks of more rows
    # than the corpus, only the first shard of each side would hold a block start: 1 task per direction)
    two = mine_synthetic(tmp_path / "two", source, target, 37, k=4, workers=2, threshold=1.2, query_block=8)
    run = json.loads(two.with_suffix(".json").read_text())["run"]
    assert sum(name.startswith("forward-") for name in run["task_workers"]) == 7 and run["tasks"] == 13
    kept = [line for line in want if float(line.split("\t")[2]) >= 1.2]
    assert two.read_text().splitlines()[1:] == kept and 0 < len(kept) < len(want)
    # 2 workers of 1 BLAS thread each (on 2 cores): the last bit of a product may differ from 2 threads'
    assert np.array_equal(scored[1].source_index, expected.source_index)
    np.testing.assert_allclose(scored[1].score, expected.score, rtol=0, atol=1e-12)


def interrupted_after_three_tasks(tmp_path: Path, source: np.ndarray, target: np.ndarray) -> MineRequest:
    """Both sides written as folders of 20-row shards, and a mining run of them killed after 3 tasks."""
    write_vectors_folder(tmp_path / "src", source, 20, JOB)
    write_vectors_folder(tmp_path / "tgt", target, 20, JOB)
    job = MineRequest(tmp_path / "src", tmp_path / "tgt", tmp_path / "pairs.tsv", texts=False)

    def die(done: int, total: int) -> None:
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        mine_corpus(job, progress=die)
    return job


def test_a_killed_run_resumes_with_the_same_pairs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # query blocks of 8 rows (real corpora: 4Mi / corpus rows), so that every 20-row shard is a task
    for module in (topk, sharded_knn_module):
        monkeypatch.setattr(module, "query_block_rows", lambda corpus_rows: 8)
    source, target = comparable(120, 16, 2)
    whole = mine_synthetic(tmp_path / "whole", source, target, 20).read_text()
    job = interrupted_after_three_tasks(tmp_path, source, target)
    assert len(list((tmp_path / "pairs.tsv.work").glob("*.sims.npy"))) == 3
    mine_corpus(job)
    record = json.loads((tmp_path / "pairs.json").read_text())
    assert record["run"]["tasks_skipped"] == 3 and (tmp_path / "pairs.tsv").read_text() == whole


def test_a_rewritten_side_never_reuses_stale_neighbours(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # killed after 3 tasks, then the target folder rewritten: same shapes and row counts, other vectors
    for module in (topk, sharded_knn_module):
        monkeypatch.setattr(module, "query_block_rows", lambda corpus_rows: 8)
    source, target = comparable(120, 16, 2)
    other = comparable(120, 16, 5)[1]
    fresh = mine_synthetic(tmp_path / "fresh", source, other, 20).read_text()
    assert fresh != mine_synthetic(tmp_path / "old", source, target, 20).read_text()
    job = interrupted_after_three_tasks(tmp_path, source, target)
    write_vectors_folder(tmp_path / "tgt", other, 20, JOB)
    mine_corpus(job)
    record = json.loads((tmp_path / "pairs.json").read_text())
    assert record["run"]["tasks_skipped"] == 0 and (tmp_path / "pairs.tsv").read_text() == fresh
    assert not (tmp_path / "pairs.tsv.work").exists()


def test_a_damaged_job_record_starts_the_work_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A job.json cut short (a disk filled up, an editor) cannot say which job the tasks belong to:
    nothing is reused and the run gives the pairs of a fresh one, not a JSON traceback."""
    for module in (topk, sharded_knn_module):
        monkeypatch.setattr(module, "query_block_rows", lambda corpus_rows: 8)
    source, target = comparable(120, 16, 2)
    whole = mine_synthetic(tmp_path / "whole", source, target, 20).read_text()
    job = interrupted_after_three_tasks(tmp_path, source, target)
    marker = tmp_path / "pairs.tsv.work" / "job.json"
    marker.write_text(marker.read_text()[:25], encoding="utf-8")
    mine_corpus(job)
    record = json.loads((tmp_path / "pairs.json").read_text())
    assert record["run"]["tasks_skipped"] == 0 and (tmp_path / "pairs.tsv").read_text() == whole


def test_a_zero_row_names_its_shard_file_and_row(tmp_path: Path) -> None:
    vectors = np.ones((10, 3), dtype=np.float32)
    vectors[7] = 0.0
    rows = shard_files(tmp_path, vectors, 4)  # row 7 is row 3 of shard 1.npy
    with pytest.raises(InputError, match=r"1\.npy: row 3 of this shard is a zero vector"):
        sharded_knn(rows, 0, 10, rows, 2)
    vectors[7] = np.nan
    rows = shard_files(tmp_path / "nan", vectors, 4)
    with pytest.raises(InputError, match=r"1\.npy: row 3 of this shard is not finite"):
        sharded_knn(rows, 0, 10, rows, 2)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_mapper_that_cannot_start_is_each_task_s_error(tmp_path: Path, workers: int) -> None:
    # a shard that vanished between the driver's check and the workers' start: one line, no pool retries
    write_vectors_folder(tmp_path / "src", np.ones((6, 3), dtype=np.float32), 2, JOB)
    settings = KnnSettings((str(tmp_path / "src" / "gone.npy"),), (str(tmp_path / "src" / "gone.npy"),), 2, "w")
    tasks = [KnnTask("forward", index, 0, 0).to_json() for index in range(3)]
    results: list[str] = []

    def keep(text: str) -> bool:
        results.append(text)
        return False  # go on: every task's result is wanted

    run_mapper("local", KnnMapper, settings, tasks, workers, keep)
    errors = [KnnResult.from_json(text).error for text in results]
    assert len(errors) == 3 and all(error and "gone.npy: unreadable embedding shard" in error for error in errors)


def test_engine_options_are_checked_before_any_work(tmp_path: Path) -> None:
    job = MineRequest(tmp_path / "missing", tmp_path / "missing", tmp_path / "p.tsv")
    with pytest.raises(InputError, match="--ray-address applies to --engine ray only"):
        mine_corpus(replace(job, ray_address="auto"))
    with pytest.raises(InputError, match="--cpus-per-worker must be at least 1, got 0"):
        mine_corpus(replace(job, cpus_per_worker=0))


def test_comparability_warning_on_unrelated_corpora_only(tmp_path: Path) -> None:
    source, target = comparable(400, 384, 3)
    assert comparability_warning(ratio_margin_candidates(source, target, 4, "exact").score) is None
    rng = np.random.default_rng(4)
    centers = rng.standard_normal((20, 384))
    unrelated = [centers[rng.integers(0, 20, 400)] + 0.7 * rng.standard_normal((400, 384)) for _ in range(2)]
    warning = comparability_warning(ratio_margin_candidates(*unrelated, 4, "exact").score)
    assert warning is not None and "look unrelated" in warning
    mine_synthetic(tmp_path, *(x.astype(np.float32) for x in unrelated), 100)
    assert json.loads((tmp_path / "pairs-local-1.json").read_text())["comparability_warning"] == warning


def test_folders_of_different_models_are_refused(tmp_path: Path) -> None:
    vectors = np.ones((4, 3), dtype=np.float32)
    write_vectors_folder(tmp_path / "a", vectors, 2, JOB)
    write_vectors_folder(tmp_path / "b", vectors, 2, JOB | {"model": {"weights_fingerprint": "other"}})
    with pytest.raises(InputError, match="different models"):
        mine_corpus(MineRequest(tmp_path / "a", tmp_path / "b", tmp_path / "p.tsv"))
    with pytest.raises(InputError, match=r"no manifest\.json"):
        mine_corpus(MineRequest(tmp_path / "a", tmp_path, tmp_path / "p.tsv"))


def test_mine_corpus_equals_paraxl_mine(tiny_model_dir: Path, data_dir: Path, tmp_path: Path) -> None:
    german = (data_dir / "tatoeba/v1/tatoeba.deu-eng.deu").read_text(encoding="utf-8").splitlines()[:40]
    english = (data_dir / "tatoeba/v1/tatoeba.deu-eng.eng").read_text(encoding="utf-8").splitlines()[:45]
    for name, texts in (("de.txt", german), ("en.txt", english)):
        (tmp_path / name).write_text("\n".join(texts) + "\n", encoding="utf-8")
        # shards of 8 rows: the mined rows' texts come from several shards of each side
        encode_corpus(request(tmp_path / name, tmp_path / f"emb-{name}", tiny_model_dir, batch_size=64))
    runner = CliRunner()
    common = ["--model", str(tiny_model_dir)]
    mined_file = tmp_path / "m.tsv"
    mined = runner.invoke(
        app, ["mine", str(tmp_path / "de.txt"), str(tmp_path / "en.txt"), "-o", str(mined_file), *common]
    )
    assert mined.exit_code == 0, mined.output
    folders = [str(tmp_path / "emb-de.txt"), str(tmp_path / "emb-en.txt")]
    sharded = runner.invoke(app, ["mine-corpus", *folders, "-o", str(tmp_path / "s.tsv")])
    assert sharded.exit_code == 0, sharded.output
    # paraxl mine numbers lines from 1, the shards' ids are corpus positions from 0; the texts are the same
    lines = mined_file.read_text(encoding="utf-8").splitlines()
    expected = [[str(int(i) - 1), str(int(j) - 1), *rest] for i, j, *rest in (line.split("\t") for line in lines[1:])]
    found = (tmp_path / "s.tsv").read_text(encoding="utf-8").splitlines()
    assert found[0] == lines[0] == "source_id\ttarget_id\tmargin\tsource\ttarget"
    assert [line.split("\t") for line in found[1:]] == expected and len(expected) > 10
    assert all(german[int(row[0])] == row[3] and english[int(row[1])] == row[4] for row in expected)
    # without texts: the same pairs; and an input gone since encoding is one line that names it
    bare = runner.invoke(app, ["mine-corpus", *folders, "-o", str(tmp_path / "b.tsv"), "--no-texts"])
    assert bare.exit_code == 0, bare.output
    assert [line.split("\t") for line in (tmp_path / "b.tsv").read_text().splitlines()[1:]] == [
        row[:3] for row in expected
    ]
    (tmp_path / "en.txt").rename(tmp_path / "gone.txt")
    failed = runner.invoke(app, ["mine-corpus", *folders, "-o", str(tmp_path / "g.tsv")])
    assert failed.exit_code == 2 and len(failed.stderr.strip().splitlines()) == 1
    assert f"{tmp_path / 'en.txt'}: input of the embeddings is gone; pass --no-texts" in failed.stderr
    assert not (tmp_path / "g.tsv").exists()


def test_two_runs_with_one_output_do_not_share_its_work_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_vectors_folder(tmp_path / "src", np.eye(4, dtype=np.float32), 2, JOB)
    monkeypatch.setattr(locks, "DEFAULT_WAIT_SECONDS", 0.0)
    busy = "mining work folder is being written by another paraxl process"
    # another run of the same output, still going
    with locks.folder_lock(tmp_path / "p.tsv.work", "mining work folder"), pytest.raises(InputError, match=busy):
        mine_corpus(MineRequest(tmp_path / "src", tmp_path / "src", tmp_path / "p.tsv", texts=False))
    mine_corpus(MineRequest(tmp_path / "src", tmp_path / "src", tmp_path / "p.tsv", texts=False))
    assert not (tmp_path / "p.tsv.work").exists() and (tmp_path / "p.tsv").is_file()
