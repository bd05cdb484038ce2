"""Retrieve and rerank (issue 28): ``paraxl.decision.rerank`` against a naive re-sort by
``CrossEncoder.predict``, ``paraxl search --rerank`` end to end, and ``benchmarks/bench_rerank.py`` on tiny models."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from sentence_transformers.cross_encoder import CrossEncoder
from typer.testing import CliRunner

from paraxl.cli.main import app
from paraxl.data.pairs import LabeledPair
from paraxl.decision.rerank import check_rerank_depth, rerank_hits
from paraxl.errors import InputError, ModelFormatError
from paraxl.modeling.cross_encoder import open_cross_encoder_scorer

from .test_search_cli import SENTENCES
from .test_serve_cross_encoder import save_tiny_cross_encoder

runner = CliRunner()


@pytest.fixture(scope="module")
def cross_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_cross_encoder(tiny_model_dir, tmp_path_factory.mktemp("cross") / "ce")


class TableScorer:
    """A PairScorer from a fixed table, counting its calls."""

    def __init__(self, table: dict[tuple[str, str], float]) -> None:
        self.table, self.calls = table, 0

    def score(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        self.calls += 1
        return np.array([self.table[pair] for pair in pairs], dtype=np.float64)


def test_rerank_hits_sorts_by_the_scorer_and_keeps_ties_in_bi_order() -> None:
    scorer = TableScorer({("q", "a"): 0.1, ("q", "b"): 0.7, ("q", "c"): 0.7, ("q", "d"): 0.9, ("r", "a"): 0.5})
    reranked = rerank_hits(["q", "r"], [["a", "b", "c", "d"], ["a"]], lambda text: text, scorer, keep=3)
    assert scorer.calls == 1  # every query's pairs in one call
    assert [(item.hit, item.rank, item.bi_rank, item.cross_score) for item in reranked[0]] == [
        ("d", 1, 4, 0.9), ("b", 2, 2, 0.7), ("c", 3, 3, 0.7),
    ]  # fmt: skip
    assert [item.hit for item in reranked[1]] == ["a"]
    with pytest.raises(InputError, match="hit 2 of query 1 has no stored text"):
        rerank_hits(["q"], [["a", None]], lambda text: text, scorer)


def test_a_cross_encoder_giving_nan_or_too_few_scores_is_a_model_fault_not_bad_input() -> None:
    """Not an InputError: the service would answer it 409 (its configuration), not 500 (a fault)."""
    for scores, count in (([0.5, float("nan")], 2), ([0.5], 1)):
        scorer = FixedScorer(scores)
        with pytest.raises(ModelFormatError, match=f"gave {count} scores for 2 pairs") as caught:
            rerank_hits(["q"], [["a", "b"]], lambda text: text, scorer)
        assert not isinstance(caught.value, InputError)


class FixedScorer:
    """A PairScorer that gives the same scores whatever it is asked."""

    def __init__(self, scores: list[float]) -> None:
        self.scores = scores

    def score(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        return np.array(self.scores, dtype=np.float64)


def test_the_rerank_depth_is_k_by_default_and_never_below_it() -> None:
    assert check_rerank_depth(5, None) == 5 and check_rerank_depth(5, 20) == 20
    with pytest.raises(InputError, match="at least k"):
        check_rerank_depth(5, 4)


def test_rerank_equals_a_naive_resort_by_cross_encoder_predict(cross_dir: Path) -> None:
    queries = ["the cat", "der hund ran", "le chat sat"]
    docs = list(SENTENCES.values())
    hits = [docs[i:] + docs[:i] for i in range(len(queries))]  # any bi-encoder order
    reranked = rerank_hits(queries, hits, lambda text: text, open_cross_encoder_scorer(cross_dir), keep=4)
    reference = CrossEncoder(str(cross_dir))
    for query, row, got in zip(queries, hits, reranked, strict=True):
        scores = reference.predict([(query, text) for text in row], convert_to_numpy=True)
        naive = sorted(range(len(row)), key=lambda i: (-scores[i], i))[:4]
        assert [item.hit for item in got] == [row[i] for i in naive]
        # one call over all queries' pairs pads differently from the reference's per-query calls: ~1e-5
        np.testing.assert_allclose([item.cross_score for item in got], scores[naive], atol=1e-4)
        assert min(np.diff(np.sort(scores))) > 1e-3  # the scores do tell the hits apart


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture()
def built(tiny_model_dir: Path, tmp_path: Path) -> Path:
    corpus = tmp_path / "corpus.tsv"
    corpus.write_text("id\ttext\n" + "".join(f"{key}\t{text}\n" for key, text in SENTENCES.items()), encoding="utf-8")
    index_dir = tmp_path / "ix"
    code, _, err = run("index", "build", str(corpus), "-o", str(index_dir), "-m", str(tiny_model_dir),
                       "--id-column", "id")  # fmt: skip
    assert code == 0, err
    return index_dir


def test_search_rerank_end_to_end(built: Path, cross_dir: Path, tmp_path: Path) -> None:
    code, out, err = run("search", str(built), "the dog ran", "-k", "6", "--json")
    assert code == 0, err
    plain = [json.loads(line) for line in out.splitlines()]
    code, out, err = run("search", str(built), "the dog ran", "-k", "3", "--rerank", str(cross_dir),
                         "--rerank-top-k", "6", "--json")  # fmt: skip
    assert code == 0, err
    hits = [json.loads(line) for line in out.splitlines()]
    scores = CrossEncoder(str(cross_dir)).predict([("the dog ran", hit["text"]) for hit in plain])
    naive = sorted(range(6), key=lambda i: (-scores[i], i))[:3]
    assert [hit["id"] for hit in hits] == [plain[i]["id"] for i in naive]
    assert [hit["rank"] for hit in hits] == [1, 2, 3] and [hit["bi_rank"] for hit in hits] == [i + 1 for i in naive]
    assert [hit["score"] for hit in hits] == [plain[i]["score"] for i in naive]  # the cosine is kept
    np.testing.assert_allclose([hit["cross_score"] for hit in hits], scores[naive], atol=1e-4)

    queries = tmp_path / "queries.txt"
    queries.write_text("the dog ran\nle chat\n", encoding="utf-8")
    target = tmp_path / "hits.tsv"
    code, _, err = run("search", str(built), "--queries", str(queries), "-k", "3", "--rerank", str(cross_dir),
                       "--rerank-top-k", "6", "-o", str(target))  # fmt: skip
    assert code == 0, err
    with target.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert list(rows[0]) == ["query", "rank", "id", "score", "text", "bi_rank", "cross_score"]
    assert [row["id"] for row in rows[:3]] == [hit["id"] for hit in hits]
    code, out, err = run("search", str(built), "le chat", "-k", "2", "--rerank", str(cross_dir))
    assert code == 0, err
    assert "cross score" in out  # the table's extra column


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["-k", "4", "--rerank", "CROSS", "--rerank-top-k", "3"], "--rerank-top-k: the rerank depth"),
        (["--rerank-top-k", "3"], "--rerank-top-k goes with --rerank"),
        (["--rerank", "BI"], "is not a cross-encoder"),
    ],
)
def test_search_rerank_refusals_are_one_line(
    built: Path, cross_dir: Path, tiny_model_dir: Path, options: list[str], message: str
) -> None:
    names = {"CROSS": str(cross_dir), "BI": str(tiny_model_dir)}
    code, _, err = run("search", str(built), "the cat", *[names.get(option, option) for option in options])
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err


def test_search_refuses_a_reranker_that_is_no_cross_encoder_before_loading_the_index(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """The config check comes first: a missing index folder is not even looked at."""
    code, _, err = run("search", str(tmp_path / "no-index"), "the cat", "--rerank", str(tiny_model_dir))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"--rerank {tiny_model_dir} is not a cross-encoder" in err


def write_pawsx(path: Path, rows: list[tuple[str, str, str, int]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["id\tsentence1\tsentence2\tlabel", *(f"{key}\t{a}\t{b}\t{label}" for key, a, b, label in rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_the_rerank_benchmark_runs_on_tiny_models(tiny_model_dir: Path, cross_dir: Path, tmp_path: Path) -> None:
    """benchmarks/bench_rerank.py end to end on a hand-made resplit test split (en and de)."""
    from .scripts import load_benchmark_script

    words = list(SENTENCES.values())
    root = tmp_path / "data"
    english = [(f"t{i}", words[i], words[(i + 1) % 6], i % 2) for i in range(6)]
    german = [(key, a + " de", b + " de", label) for key, a, b, label in english] + [("t9", "x", "NS", 1)]
    write_pawsx(root / "pawsx" / "resplit" / "en" / "test.tsv", english)
    write_pawsx(root / "pawsx" / "resplit" / "de" / "test.tsv", german)
    script = load_benchmark_script("bench_rerank")
    assert script.recall([["a", "b"], ["c", "d"]], [{"b"}, {"x"}], 1) == 0.0
    assert script.recall([["a", "b"], ["c", "d"]], [{"b"}, {"c"}], 2) == 1.0
    assert script.recall([["a", "b"], ["c", "d"]], [frozenset({"x", "a"}), frozenset({"d"})], 1) == 0.5

    # the accepted texts of a query: its target, its own translation when the corpus holds it (t3's
    # German sentence1 is t4's sentence2) and the other label-1 sentence2 of the same English sentence1
    def rows(*items: tuple[str, str, int]) -> list[LabeledPair]:
        return [LabeledPair(a, b, label, i + 2, Path("test.tsv"), f"t{i + 1}") for i, (a, b, label) in enumerate(items)]

    pairs_en = rows(("q", "p1", 1), ("q", "n1", 0), ("q", "p2", 1), ("r", "s", 0))
    pairs_de = rows(("q de", "p1 de", 1), ("q de", "n1 de", 0), ("q de", "p2 de", 1), ("r de", "q de", 0))
    found = script.retrieval_set(pairs_en, pairs_de, None)
    assert found.queries == ["q", "q"] and found.targets == ["p1 de", "p2 de"]
    assert found.accepted == [frozenset({"p1 de", "p2 de", "q de"})] * 2  # n1 de: label 0, not accepted
    script.main(["--bi", str(tiny_model_dir), "--cross", str(cross_dir), "--data-dir", str(root),
                 "--languages", "en,de", "--limit", "2", "--top-k", "4", "--name", "smoke",
                 "--output-dir", str(tmp_path)])  # fmt: skip
    document = json.loads((tmp_path / "smoke.json").read_text())
    de = document["languages"]["de"]
    assert de["queries"] == 2 and de["corpus"] == 6  # the label-1 pairs (first 2); NS left out of the corpus
    assert document["languages"]["en"]["queries"] == 2
    assert set(de["reranked"]) == {"recall@1", "recall@10", "recall_any@1", "recall_any@10"}
    assert de["ms_per_query"]["rerank"] > 0
    assert all(de[name]["recall_any@1"] >= de[name]["recall@1"] for name in ("bi", "reranked"))
    assert de["bi"]["recall@10"] == de["reranked"]["recall@10"]  # 4 hits searched, reordered: the same set
    cpu = document["machine"]["cpu"]
    assert cpu["model"] and set(cpu["flags"]) == set(script.CPU_FLAGS) and cpu["available_cpus"] >= 1
    assert cpu["model"] in (tmp_path / "smoke.md").read_text()
    assert "| de | 2 | 6 | 2.00 |" in (tmp_path / "smoke.md").read_text()


def test_the_rerank_benchmark_refuses_bad_input_in_one_error_line(
    tiny_model_dir: Path, cross_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing data folder, a --cross that is a sentence embedder, a --bi that is a cross-encoder:
    one ``error:`` line and exit status 2, as bench_cross_encoder_onnx does (no traceback)."""
    from .scripts import load_benchmark_script

    root = tmp_path / "data"
    for language in ("en", "de"):
        write_pawsx(root / "pawsx" / "resplit" / language / "test.tsv", [("t1", "the cat", "le chat", 1)])
    script = load_benchmark_script("bench_rerank")
    cases = [
        (tiny_model_dir, cross_dir, tmp_path / "no-data", "no-data"),
        (tiny_model_dir, tiny_model_dir, root, f"--cross {tiny_model_dir} is not a cross-encoder"),
        (cross_dir, cross_dir, root, f"--bi {cross_dir} is a cross-encoder"),
    ]
    for bi, cross, data, message in cases:
        code = script.main(["--bi", str(bi), "--cross", str(cross), "--data-dir", str(data), "--languages", "en,de",
                            "--output-dir", str(tmp_path / "out")])  # fmt: skip
        out = capsys.readouterr().out
        assert code == 2 and out.count("\n") == 1 and out.startswith("error: ") and message in out, out
    assert not (tmp_path / "out").exists()
