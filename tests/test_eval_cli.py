"""``paraxl eval`` end to end with the tiny model on miniature data: files, provenance, cache, errors."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from paraxl.cli.main import app
from paraxl.errors import InputError
from paraxl.evaluation.embeddings import CachedEmbedder
from paraxl.evaluation.results import json_ready, read_document
from paraxl.modeling.bi_encoder import BiEncoder

from .eval_fixtures import write_benchmark_data

runner = CliRunner()


@pytest.fixture()
def bench_dir(tmp_path: Path) -> Path:
    return write_benchmark_data(tmp_path / "data")


def _eval(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["eval", *args])
    return result.exit_code, result.output


def test_eval_writes_results_summary_and_plots(
    tiny_model_dir: Path, bench_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARAXL_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "out"
    code, output = _eval(
        str(tiny_model_dir), "--tasks", "pawsx,bucc,sib200", "--data-dir", str(bench_dir), "-o", str(out)
    )
    assert code == 0, output
    document = read_document(out / "pawsx.json")
    assert document["task"]["name"] == "pawsx" and document["protocol"] == "resplit"
    assert len(document["model"]["fingerprint"]) == 64
    files = {entry["path"]: entry["sha256"] for entry in document["data"]["files"]}
    assert "pawsx/resplit/en/validation.tsv" in files and len(files) == 14
    for path, digest in files.items():
        assert hashlib.sha256((bench_dir / path).read_bytes()).hexdigest() == digest
    assert document["embeddings"]["encoded"] > 0
    assert set(document["details"]["test_sweeps"]) == {"en", "de", "es", "fr", "ja", "ko", "zh"}
    summary = (out / "summary.md").read_text()
    assert "## pawsx" in summary and "## bucc" in summary and "## sib200" in summary
    for plot in ("pawsx_threshold_curve", "pawsx_cross_lingual_heatmap", "pawsx_similarity_histograms"):
        assert (out / "plots" / f"{plot}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # a second run of the same model reads every vector from the on-disk cache
    code, output = _eval(str(tiny_model_dir), "--tasks", "pawsx", "--data-dir", str(bench_dir), "-o", str(out))
    assert code == 0, output
    again = read_document(out / "pawsx.json")
    assert again["embeddings"]["encoded"] == 0
    assert again["main_score"] == pytest.approx(document["main_score"], abs=1e-6)
    assert "## bucc" in (out / "summary.md").read_text()  # earlier results of this model stay in the summary


def test_missing_data_file_is_one_clear_error_and_no_result(
    tiny_model_dir: Path, bench_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARAXL_CACHE_DIR", str(tmp_path / "cache"))
    (bench_dir / "bucc2018" / "zh-en" / "zh-en.sample.gold").unlink()
    out = tmp_path / "out"
    code, output = _eval(str(tiny_model_dir), "--tasks", "bucc", "--data-dir", str(bench_dir), "-o", str(out))
    assert code == 2
    assert "zh-en.sample.gold" in output and "Traceback" not in output
    assert not (out / "bucc.json").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tasks", "pawsx,nope"], "unknown task(s) nope"),
        (["--protocol", "leaky"], "unknown PAWS-X protocol"),
        (["--tasks", "sts22"], "no sts22 files"),
    ],
)
def test_bad_options_fail_before_any_result(
    tiny_model_dir: Path, bench_dir: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    code, output = _eval(str(tiny_model_dir), "--data-dir", str(bench_dir), "-o", str(tmp_path / "o"), *args)
    assert code == 2 and message in " ".join(output.split())
    assert not (tmp_path / "o").exists()


def test_no_data_dir_is_explained(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PARAXL_DATA_DIR", raising=False)
    code, output = _eval(str(tiny_model_dir), "--tasks", "pawsx")
    assert code == 2 and "--data-dir" in output


def test_cached_embedder_matches_encoder_and_persists(tiny_encoder: BiEncoder, tmp_path: Path) -> None:
    texts = ["a house", "ein Haus", "a house", "une maison"]
    cached = CachedEmbedder(tiny_encoder, tmp_path / "shards")
    vectors = cached.embed(texts)
    np.testing.assert_allclose(vectors, tiny_encoder.encode(texts), atol=1e-6)
    assert cached.encoded == 3  # the repeated text is encoded once
    reloaded = CachedEmbedder(tiny_encoder, tmp_path / "shards")
    np.testing.assert_array_equal(reloaded.embed(texts), vectors)
    assert reloaded.encoded == 0
    # a damaged shard costs re-encoding, never wrong vectors
    for shard in (tmp_path / "shards").glob("shard-*.npz"):
        shard.write_bytes(b"garbage")
    damaged = CachedEmbedder(tiny_encoder, tmp_path / "shards")
    np.testing.assert_allclose(damaged.embed(texts), vectors, atol=1e-6)
    assert damaged.encoded == 3


def test_result_json_is_strict(tmp_path: Path) -> None:
    assert json_ready({"a": float("nan"), "b": [np.float32(1.5), np.int64(2)], "c": Path("x")}) == {
        "a": None,
        "b": [1.5, 2],
        "c": "x",
    }
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InputError, match="not a paraxl result file"):
        read_document(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text(json.dumps({"x": 1}))
    with pytest.raises(InputError, match="no task"):
        read_document(tmp_path / "other.json")
    assert os.path.exists(tmp_path / "other.json")


def test_mine_reproduces_the_bucc_task(tiny_model_dir: Path, bench_dir: Path, tmp_path: Path) -> None:
    """``paraxl mine`` and the BUCC task share one function: same pairs, same margins, same F1."""
    from paraxl.evaluation.embeddings import CachedEmbedder
    from paraxl.evaluation.metrics.bitext import precision_recall_f1
    from paraxl.evaluation.tasks.base import EvalContext
    from paraxl.evaluation.tasks.bitext import BuccTask

    folder = bench_dir / "bucc2018" / "zh-en"
    out = tmp_path / "mined.tsv"
    code, output = _mine(tiny_model_dir, folder / "zh-en.sample.zh", folder / "zh-en.sample.en", out)
    assert code == 0, output
    rows = [line.split("\t") for line in out.read_text(encoding="utf-8").splitlines()[1:]]
    mined = {(row[0], row[1]): float(row[2]) for row in rows}
    task = BuccTask(("zh-en",)).run(CachedEmbedder(BiEncoder.load(tiny_model_dir)), EvalContext(data_dir=bench_dir))
    gold = [tuple(line.split("\t")) for line in (folder / "zh-en.sample.gold").read_text().splitlines()]
    scores = task.scores["per_pair"]["zh-en"]
    assert len(mined) == scores["n_candidates"]
    threshold = scores["oracle_threshold"]
    assert precision_recall_f1([pair for pair, margin in mined.items() if margin >= threshold], gold)[2] == (
        pytest.approx(scores["oracle_f1_fit_on_gold"], abs=1e-6)
    )


def _mine(model: Path, source: Path, target: Path, out: Path) -> tuple[int, str]:
    result = runner.invoke(app, ["mine", str(source), str(target), "--ids", "-o", str(out), "--model", str(model)])
    return result.exit_code, result.output


def test_mine_plain_text_with_threshold_and_bad_output(tiny_model_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "src.txt"
    target = tmp_path / "tgt.txt"
    source.write_text("a red house\nthe river bank\n", encoding="utf-8")
    target.write_text("the river bank\na red house\nsomething else\n", encoding="utf-8")
    out = tmp_path / "pairs.tsv"
    result = runner.invoke(
        app, ["mine", str(source), str(target), "-o", str(out), "--model", str(tiny_model_dir), "--k", "2"]
    )
    assert result.exit_code == 0, result.output
    rows = [line.split("\t") for line in out.read_text(encoding="utf-8").splitlines()[1:]]
    assert {(row[0], row[1]) for row in rows} == {("1", "2"), ("2", "1")}  # identical sentences pair up
    result = runner.invoke(
        app, ["mine", str(source), str(target), "-o", str(out), "--model", str(tiny_model_dir), "--threshold", "99"]
    )
    assert result.exit_code == 0 and out.read_text(encoding="utf-8").splitlines()[1:] == []
    result = runner.invoke(app, ["mine", str(source), str(target), "-o", str(tmp_path / "x.csv")])
    assert result.exit_code == 2 and "must be a .tsv" in result.output
