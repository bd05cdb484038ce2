from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from paraxl.cli.main import app
from paraxl.modeling.bi_encoder import BiEncoder

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_encode_npy_and_parquet(tiny_model_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(json.dumps({"text": t}) for t in ["the cat", "le chat", "der hund"]) + "\n")
    code, _, err = run("encode", str(source), "-o", str(tmp_path / "e.npy"), "-m", str(tiny_model_dir))
    assert code == 0, err
    matrix = np.load(tmp_path / "e.npy", allow_pickle=False)
    expected = BiEncoder.load(tiny_model_dir).encode(["the cat", "le chat", "der hund"])
    np.testing.assert_allclose(matrix, expected, atol=1e-6)
    code, _, err = run("encode", str(source), "-o", str(tmp_path / "e.parquet"), "-m", str(tiny_model_dir))
    assert code == 0, err
    table = pq.read_table(tmp_path / "e.parquet")
    assert table.column("text").to_pylist() == ["the cat", "le chat", "der hund"]
    np.testing.assert_allclose(np.array(table.column("embedding").to_pylist()), expected, atol=1e-6)


def test_similarity_of_two_sentences_and_pairs(tiny_model_dir: Path, tmp_path: Path) -> None:
    code, out, err = run("similarity", "the cat", "the cat", "-m", str(tiny_model_dir))
    assert code == 0, err
    assert float(out.strip()) == pytest.approx(1.0, abs=1e-4)
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("id\tsentence1\tsentence2\tlabel\n1\tthe cat\tle chat\t1\n2\tthe dog\tder hund\t0\n")
    target = tmp_path / "scores.tsv"
    code, _, err = run("similarity", "--pairs", str(pairs), "-o", str(target), "-m", str(tiny_model_dir))
    assert code == 0, err
    rows = target.read_text().splitlines()
    assert rows[0] == "sentence1\tsentence2\tcosine" and len(rows) == 3
    encoder = BiEncoder.load(tiny_model_dir)
    a, b = encoder.encode(["the cat", "le chat"])
    assert float(rows[1].split("\t")[2]) == pytest.approx(float(a @ b), abs=1e-5)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"ok\n\n", "in.txt:2: empty text"),
        (b"ok\n\xc3\x28\n", "in.txt:2: not valid UTF-8"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    tiny_model_dir: Path, tmp_path: Path, content: bytes, message: str
) -> None:
    source = tmp_path / "in.txt"
    source.write_bytes(content)
    target = tmp_path / "out.npy"
    code, _, err = run("encode", str(source), "-o", str(target), "-m", str(tiny_model_dir))
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not target.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["in.txt"]


def test_other_cli_errors(tiny_model_dir: Path, tmp_path: Path) -> None:
    code, _, err = run("encode", str(tmp_path / "missing.txt"), "-o", str(tmp_path / "o.npy"))
    assert code == 2 and "missing.txt: no such file" in err
    (tmp_path / "t.txt").write_text("x\n")
    code, _, err = run("encode", str(tmp_path / "t.txt"), "-o", str(tmp_path / "o.csv"))
    assert code == 2 and "must end in .npy or .parquet" in err
    code, _, err = run("encode", str(tmp_path / "t.txt"), "-o", str(tmp_path / "o.npy"), "-m", "bundled:nope")
    assert code == 2 and "unknown bundled model 'nope'" in err
    bad_pairs = tmp_path / "p.tsv"
    bad_pairs.write_text("a\tb\tc\n")
    code, _, err = run("similarity", "--pairs", str(bad_pairs), "-m", str(tiny_model_dir))
    assert code == 2 and "p.tsv:1: expected 2 tab-separated fields, found 3" in err
    code, _, err = run("similarity", "only one", "-m", str(tiny_model_dir))
    assert code == 2 and "expected two non-empty sentences" in err
    assert not (tmp_path / "o.npy").exists()


@pytest.mark.real_model
def test_demo_and_models_on_bundled_model(paraxl_cache: Path) -> None:
    code, out, err = run("demo", "--similarities-only")
    assert code == 0, err
    assert "cosine similarity across languages" in out and "word-order pairs" in out
    code, out, err = run("models")
    assert code == 0 and "ready" in out
