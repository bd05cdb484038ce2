"""VectorIndex: every index_type against a naive loop and scikit-learn, storage round trips, damage, errors."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import faiss
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.neighbors import NearestNeighbors

from paraxl.errors import InputError, ModelSpecError
from paraxl.retrieval import default_nlist
from paraxl.serving.index import (
    EXACT_MAX_COUNT,
    INDEX_TYPE_CHOICES,
    IndexInfo,
    SearchHit,
    VectorIndex,
    check_query_model,
    checked_vectors,
    choose_index_type,
)

INDEX_TYPES = ("exact", "flat", "ivf", "hnsw")


def random_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    """Gaussian rows, deliberately *not* unit length (the index must normalise them)."""
    return (np.random.default_rng(seed).standard_normal((n, dim)) * 3).astype(np.float32)


def clustered_vectors(n: int, dim: int, centres: int, seed: int, spread: float = 0.6) -> np.ndarray:
    """Rows around ``centres`` random unit centres: neighbours exist, as with real sentence embeddings."""
    rng = np.random.default_rng(seed)
    middle = rng.standard_normal((centres, dim))
    middle /= np.linalg.norm(middle, axis=1, keepdims=True)
    points = middle[rng.integers(0, centres, n)] + spread * rng.standard_normal((n, dim)) / math.sqrt(dim)
    return points.astype(np.float32)


def naive_top_k(corpus: np.ndarray, query: np.ndarray, k: int) -> list[tuple[int, float]]:
    """The definition: cosine of the query with every row, in a Python loop, sorted best first."""
    scores = []
    query_norm = math.sqrt(sum(float(x) ** 2 for x in query))
    for row, vector in enumerate(corpus):
        dot = sum(float(a) * float(b) for a, b in zip(vector, query, strict=True))
        scores.append((row, dot / (math.sqrt(sum(float(x) ** 2 for x in vector)) * query_norm)))
    scores.sort(key=lambda pair: (-pair[1], pair[0]))
    return scores[:k]


def ids_for(n: int, prefix: str = "doc") -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def hit_ids(hits: list[list[SearchHit]]) -> list[list[str]]:
    return [[hit.id for hit in row] for row in hits]


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    return random_vectors(500, 16, seed=0), random_vectors(20, 16, seed=1)


@pytest.mark.parametrize("index_type", ["exact", "flat"])
def test_exhaustive_index_types_equal_a_naive_loop(index_type: str, data: tuple[np.ndarray, np.ndarray]) -> None:
    corpus, queries = data
    index = VectorIndex.build(corpus, ids_for(500), index_type=index_type)
    results = index.search(queries, k=10)
    for query, hits in zip(queries, results, strict=True):
        expected = naive_top_k(corpus, query, 10)
        assert [hit.id for hit in hits] == [f"doc{row}" for row, _ in expected]
        np.testing.assert_allclose([hit.score for hit in hits], [score for _, score in expected], atol=1e-5)
        assert [hit.rank for hit in hits] == list(range(1, 11))


@pytest.mark.parametrize("index_type", INDEX_TYPES)
def test_index_types_agree_with_scikit_learn_brute_force(index_type: str) -> None:
    corpus, queries = clustered_vectors(3000, 24, 40, seed=2), clustered_vectors(50, 24, 40, seed=3)
    exhaustive = {"ivf": {"nlist": 30, "nprobe": 30}, "hnsw": {"ef_search": 3000}}.get(index_type, {})
    index = VectorIndex.build(corpus, ids_for(3000), index_type=index_type, **exhaustive)  # type: ignore[arg-type]
    distances, rows = (
        NearestNeighbors(n_neighbors=5, metric="cosine", algorithm="brute").fit(corpus).kneighbors(queries)
    )
    results = index.search(queries, k=5)
    assert hit_ids(results) == [[f"doc{row}" for row in query_rows] for query_rows in rows]
    np.testing.assert_allclose([[hit.score for hit in hits] for hits in results], 1 - distances, atol=1e-5)


@pytest.mark.parametrize("index_type", ["ivf", "hnsw"])
def test_approximate_index_types_with_exhaustive_settings_equal_exact(
    index_type: str, data: tuple[np.ndarray, np.ndarray]
) -> None:
    corpus, queries = data
    exact = VectorIndex.build(corpus, ids_for(500), index_type="exact")
    if index_type == "ivf":
        approximate = VectorIndex.build(corpus, ids_for(500), index_type="ivf", nlist=8, nprobe=8)
    else:
        approximate = VectorIndex.build(corpus, ids_for(500), index_type="hnsw", ef_search=500)
    assert hit_ids(approximate.search(queries, 10)) == hit_ids(exact.search(queries, 10))


@pytest.mark.parametrize("index_type", ["ivf", "hnsw"])
def test_default_approximate_recall_at_10_is_high_on_clustered_data(index_type: str) -> None:
    corpus = clustered_vectors(6000, 32, 60, seed=4)
    queries = clustered_vectors(200, 32, 60, seed=5)
    truth = hit_ids(VectorIndex.build(corpus, ids_for(6000), index_type="exact").search(queries, 10))
    found = hit_ids(VectorIndex.build(corpus, ids_for(6000), index_type=index_type).search(queries, 10))
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth, found, strict=True)])
    assert recall >= 0.9


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 40),
    dim=st.integers(1, 6),
    k=st.integers(1, 50),
    seed=st.integers(0, 2**16),
)
def test_exact_search_is_the_sorted_cosine_list(n: int, dim: int, k: int, seed: int) -> None:
    corpus, query = random_vectors(n, dim, seed) + 0.01, random_vectors(1, dim, seed + 1) + 0.01
    hits = VectorIndex.build(corpus, ids_for(n), index_type="exact").search(query, k)[0]
    expected = naive_top_k(corpus, query[0], k)
    assert len(hits) == min(k, n)
    np.testing.assert_allclose([hit.score for hit in hits], [score for _, score in expected], atol=1e-5)


@pytest.mark.parametrize("index_type", INDEX_TYPES)
def test_k_larger_than_the_index_returns_everything_best_first(index_type: str) -> None:
    corpus = random_vectors(30, 8, seed=6)
    index = VectorIndex.build(corpus, ids_for(30), texts=[f"text {i}" for i in range(30)], index_type=index_type)
    (hits,) = index.search(corpus[:1], k=1000)
    scores = [hit.score for hit in hits]
    assert len(hits) == 30 and sorted({hit.id for hit in hits}) == sorted(ids_for(30))
    assert scores == sorted(scores, reverse=True)
    assert hits[0] == SearchHit(1, "doc0", "text 0", pytest.approx(1.0, abs=1e-5))  # type: ignore[arg-type]


def test_ivf_missing_results_are_dropped_not_returned() -> None:
    corpus = clustered_vectors(400, 8, 10, seed=7, spread=0.1)
    index = VectorIndex.build(corpus, ids_for(400), index_type="ivf", nlist=10, nprobe=1)
    (hits,) = index.search(corpus[:1], k=400)
    assert 0 < len(hits) < 400  # one probed cell cannot hold every item: FAISS pads with -1 labels
    assert [hit.rank for hit in hits] == list(range(1, len(hits) + 1))
    assert all(hit.id in index for hit in hits)
    assert hits[0].id == "doc0"


@pytest.mark.parametrize("k", [0, -3, True, 2.5])
def test_bad_k_is_an_input_error(k: object, data: tuple[np.ndarray, np.ndarray]) -> None:
    index = VectorIndex.build(data[0], ids_for(500), index_type="exact")
    with pytest.raises(InputError, match=r"k must be an integer >= 1"):
        index.search(data[1], k=k)  # type: ignore[arg-type]


def test_vectors_are_normalised_on_the_way_in_and_the_input_is_left_alone() -> None:
    corpus = random_vectors(50, 8, seed=8)
    before = corpus.copy()
    for index_type in INDEX_TYPES:
        index = VectorIndex.build(corpus, ids_for(50), index_type=index_type)
        stored = index.vectors()
        np.testing.assert_allclose(np.linalg.norm(stored, axis=1), 1.0, atol=1e-6)
        np.testing.assert_allclose(stored, corpus / np.linalg.norm(corpus, axis=1, keepdims=True), atol=1e-6)
    np.testing.assert_array_equal(corpus, before)
    # the cosine does not depend on the query's length either
    index = VectorIndex.build(corpus, ids_for(50), index_type="exact")
    assert hit_ids(index.search(corpus[:3] * 7.5, 5)) == hit_ids(index.search(corpus[:3], 5))


def test_unit_float32_input_is_used_without_a_copy_but_exact_does_not_alias_it() -> None:
    corpus = checked_vectors(random_vectors(20, 4, seed=9), None, "vectors")
    assert checked_vectors(corpus, 4, "vectors") is corpus
    index = VectorIndex.build(corpus, ids_for(20), index_type="exact")
    before = hit_ids(index.search(corpus[:2], 3))
    corpus[:] = corpus[::-1]  # the caller reuses its buffer
    assert hit_ids(index.search(checked_vectors(random_vectors(20, 4, seed=9), None, "v")[:2], 3)) == before


@pytest.mark.parametrize("index_type", INDEX_TYPES)
def test_save_load_round_trip_gives_identical_results(index_type: str, tmp_path: Path) -> None:
    corpus, queries = random_vectors(300, 12, seed=10), random_vectors(15, 12, seed=11)
    texts = [f'line {i}\twith a tab\nand a newline, «ünïcödé» 猫 🐈 "quoted" \\ back' for i in range(300)]
    index = VectorIndex.build(
        corpus, ids_for(300), texts, index_type, model="bundled:x", model_fingerprint="f" * 64, prompt_name="query"
    )
    index.save(tmp_path / "ix")
    loaded = VectorIndex.load(tmp_path / "ix")
    assert loaded.info == index.info and len(loaded) == 300
    expected, found = index.search(queries, 7), loaded.search(queries, 7)
    assert hit_ids(found) == hit_ids(expected)
    np.testing.assert_array_equal(
        [[hit.score for hit in hits] for hits in found], [[hit.score for hit in hits] for hits in expected]
    )
    assert {hit.text for hits in found for hit in hits} <= set(texts)
    assert loaded.search(corpus[5:6], 1)[0][0].text == texts[5]
    stored = sorted(path.name for path in (tmp_path / "ix").iterdir())
    data_file = "vectors.npy" if index_type == "exact" else "index.faiss"
    assert stored == sorted(["index.json", "items.jsonl", data_file])
    assert [p.name for p in tmp_path.iterdir()] == ["ix"]  # no temporary folder left behind


@pytest.mark.parametrize("index_type", INDEX_TYPES)
def test_add_then_search_finds_the_new_items_and_survives_save(index_type: str, tmp_path: Path) -> None:
    corpus = clustered_vectors(400, 16, 8, seed=12)
    index = VectorIndex.build(corpus, ids_for(400), [f"t{i}" for i in range(400)], index_type)
    fresh = clustered_vectors(5, 16, 8, seed=13)
    index.add(fresh, ids_for(5, "new"), [f"new text {i}" for i in range(5)])
    assert len(index) == 405 and index.info.count == 405
    for hits, number in zip(index.search(fresh, 1), range(5), strict=True):
        assert hits[0].id == f"new{number}" and hits[0].text == f"new text {number}"
        assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    index.add(random_vectors(2, 16, seed=14), ["no-text-a", "no-text-b"])  # texts are optional per batch
    index.save(tmp_path / "ix")
    loaded = VectorIndex.load(tmp_path / "ix")
    assert loaded.search(fresh[:1], 1)[0][0].id == "new0"
    assert loaded.ids[-2:] == ("no-text-a", "no-text-b")
    assert loaded.search(random_vectors(2, 16, seed=14)[1:], 1)[0][0].text is None


def test_errors_on_bad_build_and_add_input() -> None:
    corpus = random_vectors(10, 4, seed=15)
    with pytest.raises(InputError, match=r"duplicate id 'doc3' \(twice in the input\)"):
        VectorIndex.build(corpus, [*ids_for(9), "doc3"])
    index = VectorIndex.build(corpus, ids_for(10), index_type="exact")
    with pytest.raises(InputError, match=r"duplicate id 'doc2' \(already in the index\)"):
        index.add(corpus[:1], ["doc2"])
    with pytest.raises(InputError, match=r"dimension 5, the index has 4"):
        index.add(random_vectors(1, 5, seed=0), ["x"])
    with pytest.raises(InputError, match=r"queries have dimension 3, the index has 4"):
        index.search(random_vectors(2, 3, seed=0), 1)
    with pytest.raises(InputError, match=r"2-d"):
        index.search(corpus[0], 1)
    bad = corpus.copy()
    bad[4] = np.nan
    with pytest.raises(InputError, match=r"row 4 holds NaN"):
        VectorIndex.build(bad, ids_for(10))
    bad[4] = 0
    with pytest.raises(InputError, match=r"row 4 is all zeros"):
        VectorIndex.build(bad, ids_for(10))
    with pytest.raises(InputError, match=r"10 vectors but 9 ids"):
        VectorIndex.build(corpus, ids_for(9))
    with pytest.raises(InputError, match=r"10 vectors but 2 texts"):
        VectorIndex.build(corpus, ids_for(10), ["a", "b"])
    with pytest.raises(InputError, match=r"id 1 is int"):
        VectorIndex.build(corpus[:2], ["a", 7])  # type: ignore[list-item]
    with pytest.raises(InputError, match=r"id 0 is empty"):
        VectorIndex.build(corpus[:1], [""])
    with pytest.raises(InputError, match=r"lone surrogate"):
        VectorIndex.build(corpus[:1], ["a"], ["bad \ud800"])
    with pytest.raises(InputError, match=r"no vectors"):
        VectorIndex.build(np.zeros((0, 4), np.float32), [])
    with pytest.raises(InputError, match=r"unknown index type 'annoy'"):
        VectorIndex.build(corpus, ids_for(10), index_type="annoy")
    with pytest.raises(InputError, match=r"'hnsw' takes M, ef_construction, ef_search; got nprobe"):
        VectorIndex.build(corpus, ids_for(10), index_type="hnsw", nprobe=3)
    with pytest.raises(InputError, match=r"'exact' takes no parameters"):
        VectorIndex.build(corpus, ids_for(10), index_type="exact", nlist=3)
    with pytest.raises(InputError, match=r"at least nlist=20 vectors"):
        VectorIndex.build(corpus, ids_for(10), index_type="ivf", nlist=20)
    with pytest.raises(InputError, match=r"ef_search must be an integer >= 1"):
        VectorIndex.build(corpus, ids_for(10), index_type="hnsw", ef_search=0)
    assert len(index) == 10  # failed adds changed nothing
    index.check_new_ids(["fresh"])
    with pytest.raises(InputError, match=r"duplicate id 'doc0'"):
        index.check_new_ids(["doc0"])


def test_choose_index_type_rule() -> None:
    assert choose_index_type(1) == "exact"
    assert choose_index_type(EXACT_MAX_COUNT - 1) == "exact"
    assert choose_index_type(EXACT_MAX_COUNT) == "hnsw"
    assert choose_index_type(10_000_000) == "hnsw"
    assert set(INDEX_TYPE_CHOICES) == {"auto", *INDEX_TYPES, "ivfpq"}  # ivfpq (lossy): tests/test_index_sharded.py
    assert VectorIndex.build(random_vectors(5, 3, seed=0), ids_for(5)).info.backend == "exact"


def test_default_ivf_parameters_follow_the_size_rule() -> None:
    assert default_nlist(10) == 1  # too few points to train more than one cell
    assert default_nlist(39 * 50) == 50  # capped at 39 training points per cell
    assert default_nlist(1_000_000) == 4000  # 4 sqrt(n)
    index = VectorIndex.build(random_vectors(2000, 8, seed=16), ids_for(2000), index_type="ivf", seed=3)
    assert index.info.backend_params == {"nlist": 51, "nprobe": 32, "train_size": 2000}
    again = VectorIndex.build(random_vectors(2000, 8, seed=16), ids_for(2000), index_type="ivf", seed=3)
    queries = random_vectors(10, 8, seed=17)
    assert hit_ids(again.search(queries, 5)) == hit_ids(index.search(queries, 5))  # seeded training


def test_search_params_change_recall_and_are_saved(tmp_path: Path) -> None:
    corpus, queries = clustered_vectors(3000, 16, 30, seed=18), clustered_vectors(100, 16, 30, seed=19)
    truth = hit_ids(VectorIndex.build(corpus, ids_for(3000), index_type="exact").search(queries, 10))
    index = VectorIndex.build(corpus, ids_for(3000), index_type="ivf", nlist=64, nprobe=1)

    def recall() -> float:
        found = hit_ids(index.search(queries, 10))
        return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth, found, strict=True)]))

    narrow = recall()
    index.set_search_params(nprobe=1000)  # more than there are cells: all of them
    assert index.info.backend_params["nprobe"] == 64 and recall() == 1.0 > narrow
    index.save(tmp_path / "ix")
    assert VectorIndex.load(tmp_path / "ix").info.backend_params["nprobe"] == 64
    with pytest.raises(InputError, match=r"'ivf' takes nprobe; got ef_search"):
        index.set_search_params(ef_search=10)
    with pytest.raises(InputError, match=r"'flat' takes no parameters"):
        VectorIndex.build(corpus[:10], ids_for(10), index_type="flat").set_search_params(nprobe=2)


def test_rebuild_changes_the_index_type_and_keeps_items(tmp_path: Path) -> None:
    corpus = clustered_vectors(800, 16, 10, seed=20)
    texts = [f"t{i}" for i in range(800)]
    index = VectorIndex.build(corpus, ids_for(800), texts, "exact", model="m", model_fingerprint="abc")
    rebuilt = index.rebuild("hnsw", ef_search=800)
    assert rebuilt.info.backend == "hnsw" and rebuilt.info.model_fingerprint == "abc" and len(rebuilt) == 800
    queries = clustered_vectors(20, 16, 10, seed=21)
    assert hit_ids(rebuilt.search(queries, 5)) == hit_ids(index.search(queries, 5))
    assert rebuilt.search(corpus[7:8], 1)[0][0].text == "t7"
    again = rebuilt.rebuild("ivf", nlist=8, nprobe=8).rebuild("exact")
    np.testing.assert_allclose(again.vectors(), index.vectors(), atol=1e-7)


def test_save_refuses_a_foreign_folder_and_replaces_an_index(tmp_path: Path) -> None:
    index = VectorIndex.build(random_vectors(5, 3, seed=0), ids_for(5), index_type="exact")
    foreign = tmp_path / "documents"
    foreign.mkdir()
    (foreign / "thesis.txt").write_text("precious")
    with pytest.raises(InputError, match=r"is not a paraxl index: refusing to replace it"):
        index.save(foreign)
    assert (foreign / "thesis.txt").read_text() == "precious"
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match=r"not a folder"):
        index.save(tmp_path / "file")
    index.save(tmp_path / "ix")
    bigger = VectorIndex.build(random_vectors(8, 3, seed=1), ids_for(8), index_type="flat")
    bigger.save(tmp_path / "ix")
    assert len(VectorIndex.load(tmp_path / "ix")) == 8


def test_a_failed_save_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    index = VectorIndex.build(random_vectors(5, 3, seed=0), ids_for(5), index_type="flat")

    def broken(index: object, path: str) -> None:
        Path(path).write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(faiss, "write_index", broken)
    with pytest.raises(OSError, match=r"disk full"):
        index.save(tmp_path / "ix")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture()
def saved(tmp_path: Path) -> dict[str, Path]:
    folders = {}
    for index_type in INDEX_TYPES:
        index = VectorIndex.build(random_vectors(60, 6, seed=2), ids_for(60), ["x"] * 60, index_type)
        index.save(tmp_path / index_type)
        folders[index_type] = tmp_path / index_type
    return folders


@pytest.mark.parametrize("index_type", INDEX_TYPES)
@pytest.mark.parametrize("missing", ["index.json", "items.jsonl", "data"])
def test_a_missing_file_is_named(index_type: str, missing: str, saved: dict[str, Path]) -> None:
    name = {"exact": "vectors.npy"}.get(index_type, "index.faiss") if missing == "data" else missing
    (saved[index_type] / name).unlink()
    with pytest.raises(InputError, match=f"{name}: missing index file"):
        VectorIndex.load(saved[index_type])


@pytest.mark.parametrize("index_type", INDEX_TYPES)
def test_counts_that_disagree_are_a_damaged_index(index_type: str, saved: dict[str, Path]) -> None:
    items = saved[index_type] / "items.jsonl"
    items.write_text("".join(items.read_text().splitlines(keepends=True)[:-1]))
    with pytest.raises(InputError, match=r"damaged index: index.json says 60 items, items.jsonl holds 59"):
        VectorIndex.load(saved[index_type])


def test_damaged_files_are_clear_errors(saved: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no such index folder"):
        VectorIndex.load(tmp_path / "nowhere")
    faiss_file = saved["hnsw"] / "index.faiss"
    faiss_file.write_bytes(faiss_file.read_bytes()[:500])  # truncated
    with pytest.raises(InputError, match=r"index.faiss: not a readable FAISS index \(.*read error"):
        VectorIndex.load(saved["hnsw"])
    (saved["flat"] / "index.faiss").write_bytes(b"garbage!" * 20)
    with pytest.raises(InputError, match=r"index.faiss: not a readable FAISS index \(Index type .* not recognized"):
        VectorIndex.load(saved["flat"])
    shutil.copy(saved["ivf"] / "index.faiss", saved["flat"] / "index.faiss")  # another index type
    with pytest.raises(InputError, match=r"expected a IndexFlatIP \(index.json says flat\), found IndexIVFFlat"):
        VectorIndex.load(saved["flat"])
    np.save(saved["exact"] / "vectors.npy", np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match=r"vectors.npy: not a readable .npy matrix"):  # refused, never unpickled
        VectorIndex.load(saved["exact"])
    np.save(saved["exact"] / "vectors.npy", np.zeros((60, 5), np.float32))
    with pytest.raises(InputError, match=r"expected a float32 \(n, 6\) matrix"):
        VectorIndex.load(saved["exact"])


def test_damaged_descriptions_and_items_are_clear_errors(saved: dict[str, Path]) -> None:
    folder = saved["exact"]
    info = folder / "index.json"
    record = json.loads(info.read_text())
    info.write_text("{not json")
    with pytest.raises(InputError, match=r"index.json: not readable JSON"):
        VectorIndex.load(folder)
    info.write_text(json.dumps({**record, "format_version": 99}))
    with pytest.raises(InputError, match=r"index format version 99; this paraxl reads version 1"):
        VectorIndex.load(folder)
    info.write_text(json.dumps({**record, "count": "many"}))
    with pytest.raises(InputError, match=r"count must be an integer >= 1"):
        VectorIndex.load(folder)
    info.write_text(json.dumps({**record, "backend": "annoy"}))
    with pytest.raises(InputError, match=r"unknown index type 'annoy'"):
        VectorIndex.load(folder)
    info.write_text(json.dumps(record))
    items = folder / "items.jsonl"
    lines = items.read_text().splitlines(keepends=True)
    items.write_text("".join([*lines[:3], "{broken\n", *lines[4:]]))
    with pytest.raises(InputError, match=r"items.jsonl:4: invalid JSON"):
        VectorIndex.load(folder)
    items.write_text("".join([*lines[:3], lines[1], *lines[4:]]))
    with pytest.raises(InputError, match=r"items.jsonl:4: duplicate id 'doc1'"):
        VectorIndex.load(folder)
    hnsw_info = saved["hnsw"] / "index.json"
    record = json.loads(hnsw_info.read_text())
    hnsw_info.write_text(json.dumps({**record, "backend_params": {"ef_search": "fast"}}))
    with pytest.raises(InputError, match=r"index.json: backend_params: index parameter ef_search"):
        VectorIndex.load(saved["hnsw"])


def test_check_query_model() -> None:
    info = IndexInfo(
        "exact", 4, 10, model="m", model_fingerprint="onnx-fp", weights_fingerprint="w", inference_backend="onnx"
    )
    assert check_query_model(info, "onnx-fp", "w", dimension=4) is None
    note = check_query_model(info, "torch-fp", "w", dimension=4)
    assert note is not None and "onnx inference backend" in note
    with pytest.raises(ModelSpecError, match=r"built with m \(fingerprint onnx-fp\).*--allow-model-mismatch"):
        check_query_model(info, "other", "w2", model="other-model")
    allowed = check_query_model(info, "other", "w2", allow_mismatch=True)
    assert allowed is not None and allowed.startswith("model mismatch allowed")
    with pytest.raises(ModelSpecError, match=r"gives 8-d vectors, the index holds 4-d"):
        check_query_model(info, "onnx-fp", "w", dimension=8, allow_mismatch=True)
    unrecorded = check_query_model(IndexInfo("exact", 4, 10), "x")
    assert unrecorded is not None and "no model fingerprint" in unrecorded
