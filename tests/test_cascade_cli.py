"""Cross-encoders in the pair commands, and ``paraxl cascade fit/fuse`` + ``paraxl pi --cascade``,
end to end on the tiny bi-encoder and a tiny cross-encoder built from it (seeded head)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from paraxl.cli.main import app
from paraxl.decision.cascade import cascade_rule
from paraxl.decision.two_model_file import load_rule
from paraxl.io.hashing import model_folder_fingerprint
from paraxl.modeling.cross_encoder import is_cross_encoder, load_cross_encoder, open_cross_encoder_scorer

from .tiny import save_tiny

runner = CliRunner()
WORDS = ["the", "cat", "dog", "sat", "on", "mat", "ran", "le", "chat", "der", "hund"]


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def pair_rows(n: int, seed: int) -> list[tuple[str, str, str, int]]:
    """(id, sentence1, sentence2, label): a sentence and itself (plus a stop) is 1, two random ones 0."""
    rng = np.random.default_rng(seed)

    def sentence() -> str:
        return " ".join(rng.choice(WORDS, int(rng.integers(3, 7))))

    rows = []
    for i in range(n):
        first = sentence()
        second, label = (first + " .", 1) if i % 2 == 0 else (sentence(), 0)
        rows.append((f"p{i}", first, second, label))
    return rows


def write_pairs(path: Path, rows: list[tuple[str, str, str, int]], label: str | None = None) -> Path:
    """A PAWS-X-layout TSV; ``label`` replaces every label (a poisoned file: not 0/1)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["id\tsentence1\tsentence2\tlabel"]
    lines += [f"{key}\t{a}\t{b}\t{label if label is not None else gold}" for key, a, b, gold in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def cross_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny cross-encoder: the tiny backbone with a seeded one-output head, saved by sentence-transformers."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("cross") / "ce"
    load_cross_encoder(tiny_model_dir, 64).save(str(folder))
    return folder


@pytest.fixture()
def bi_dir(tiny_model_dir: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "bi"
    shutil.copytree(tiny_model_dir, folder)
    return folder


@pytest.fixture()
def pawsx_dir(tmp_path: Path) -> Path:
    """Resplit validation for en and de; the test files are poisoned (labels 'x'): reading them would fail."""
    root = tmp_path / "data"
    for index, language in enumerate(("en", "de")):
        folder = root / "pawsx" / "resplit" / language
        write_pairs(folder / "validation.tsv", pair_rows(30, index))
        write_pairs(folder / "test.tsv", pair_rows(10, 10 + index), label="x")
    return root


def test_cross_encoder_folders_are_recognised(tiny_model_dir: Path, cross_dir: Path, tmp_path: Path) -> None:
    assert is_cross_encoder(cross_dir)
    assert not is_cross_encoder(tiny_model_dir)
    plain = tmp_path / "plain"  # a Hugging Face classifier folder without sentence-transformers files
    plain.mkdir()
    config = json.loads((cross_dir / "config.json").read_text())
    (plain / "config.json").write_text(json.dumps(config))
    assert is_cross_encoder(plain)


def test_sentence_transformers_gives_the_same_scores(cross_dir: Path) -> None:
    from sentence_transformers.cross_encoder import CrossEncoder

    pairs = [(a, b) for _, a, b, _ in pair_rows(12, 3)]
    reference = CrossEncoder(str(cross_dir)).predict(pairs, convert_to_numpy=True)
    ours = open_cross_encoder_scorer(cross_dir).score(pairs)
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-6)


def test_pi_scores_with_a_cross_encoder(cross_dir: Path, tmp_path: Path) -> None:
    rows = pair_rows(8, 4)
    pairs_file = write_pairs(tmp_path / "pairs.tsv", rows)
    out = tmp_path / "out.tsv"
    code, _, stderr = run("pi", str(cross_dir), "--pairs", str(pairs_file), "--threshold", "0.5", "-o", str(out))
    assert code == 0, stderr
    with out.open(encoding="utf-8") as handle:
        written = list(csv.DictReader(handle, delimiter="\t"))
    expected = open_cross_encoder_scorer(cross_dir).score([(a, b) for _, a, b, _ in rows])
    np.testing.assert_allclose([float(row["score"]) for row in written], expected, atol=1e-6)
    assert [row["label"] for row in written] == ["1" if s >= 0.5 else "0" for s in expected]


def test_cascade_fit_then_pi(bi_dir: Path, cross_dir: Path, pawsx_dir: Path, tmp_path: Path) -> None:
    rule_file = tmp_path / "cascade.json"
    code, stdout, stderr = run(
        "cascade", "fit", str(bi_dir), str(cross_dir), "--data-dir", str(pawsx_dir), "--languages", "en,de",
        "--budget", "0.5", "-o", str(rule_file),
    )  # fmt: skip
    assert code == 0, stderr
    assert "cascade" in stdout and rule_file.is_file()
    stored = load_rule(rule_file)
    assert stored.kind == "cascade" and stored.target == {"budget": 0.5}
    assert stored.bi.fingerprint == model_folder_fingerprint(bi_dir)
    assert stored.cross.fingerprint == model_folder_fingerprint(cross_dir)
    assert stored.validation["n_pairs"] == 60 and stored.validation["budget"] <= 0.5
    assert [record["path"] for record in stored.data] == [
        "pawsx/resplit/de/validation.tsv", "pawsx/resplit/en/validation.tsv",
    ]  # fmt: skip
    rule = cascade_rule(stored)

    rows = pair_rows(20, 7)
    out = tmp_path / "decisions.tsv"
    code, _, stderr = run("pi", str(bi_dir), "--cascade", str(rule_file), "--pairs",
                          str(write_pairs(tmp_path / "p.tsv", rows)), "-o", str(out))  # fmt: skip
    assert code == 0, stderr
    with out.open(encoding="utf-8") as handle:
        written = list(csv.DictReader(handle, delimiter="\t"))
    assert {row["decided_by"] for row in written} <= {"bi", "cross"}
    assert [row["input_label"] for row in written] == [str(label) for *_, label in rows]
    code, stdout, stderr = run("pi", str(bi_dir), "--cascade", str(rule_file), "the cat", "le chat")
    assert code == 0, stderr
    assert "nan (a cascade gives none)" in stdout and ("decided by   bi" in stdout or "decided by   cross" in stdout)
    for row in written:  # the deciding model's score at its own threshold gives the label
        cut = rule.cross_threshold if row["decided_by"] == "cross" else rule.bi_threshold
        assert row["label"] == ("1" if float(row["score"]) >= cut else "0") or abs(float(row["score"]) - cut) < 1e-6


def test_pi_refuses_a_rule_fitted_on_other_models(
    bi_dir: Path, cross_dir: Path, pawsx_dir: Path, tmp_path: Path
) -> None:
    rule_file = tmp_path / "fusion.json"
    code, _, stderr = run(
        "cascade", "fuse", str(bi_dir), str(cross_dir), "--data-dir", str(pawsx_dir), "--languages", "en,de",
        "-o", str(rule_file),
    )  # fmt: skip
    assert code == 0, stderr
    other = save_tiny(tmp_path / "other", seed=1)
    code, _, stderr = run("pi", str(other), "--cascade", str(rule_file), "the cat", "le chat")
    assert code == 2
    assert "fitted with the bi-encoder" in stderr and "other weights" in stderr
    code, stdout, stderr = run("pi", str(bi_dir), "--cascade", str(rule_file), "the cat", "le chat")
    assert code == 0, stderr
    assert "decided by   fusion" in stdout


def test_cascade_fit_needs_one_target_and_a_cross_encoder(bi_dir: Path, pawsx_dir: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "r.json")
    code, _, stderr = run("cascade", "fit", str(bi_dir), str(bi_dir), "--data-dir", str(pawsx_dir), "-o", out)
    assert code == 2 and "--budget" in stderr
    code, _, stderr = run(
        "cascade", "fit", str(bi_dir), str(bi_dir), "--data-dir", str(pawsx_dir), "--languages", "en",
        "--budget", "0.3", "-o", out,
    )  # fmt: skip
    assert code == 2 and "is not a cross-encoder" in stderr


def test_the_cascade_benchmark_runs_on_tiny_models(bi_dir: Path, cross_dir: Path, tmp_path: Path) -> None:
    """benchmarks/bench_cascade.py end to end (2 languages, 12 pairs each): every row, the en -> X cell,
    the timings, and the three files."""
    from .scripts import load_benchmark_script

    root = tmp_path / "data"
    for index, language in enumerate(("en", "de")):
        for split in ("validation", "test"):
            write_pairs(root / "pawsx" / "resplit" / language / f"{split}.tsv", pair_rows(12, 20 + index))
    script = load_benchmark_script("bench_cascade")
    script.main([
        "--bi", str(bi_dir), "--cross", str(cross_dir), "--data-dir", str(root), "--languages", "en,de",
        "--max-pairs", "10", "--timing-pairs", "12", "--name", "smoke", "--output-dir", str(tmp_path),
    ])  # fmt: skip
    document = json.loads((tmp_path / "smoke.json").read_text())
    rows = document["monolingual"]["rows"]
    assert set(rows) == {"bi", "cross", "fusion"} | {f"cascade@{b:g}" for b in (0.1, 0.2, 0.3, 0.5, 1.0)}
    assert document["monolingual"]["n_fit"] == 20 and document["monolingual"]["n_test"] == 20
    assert list(document["en_to_xx"]["rows"]["bi"]["accuracy"]) == ["en-de"]
    assert all(rows[name]["test_share_sent"] <= 1.0 for name in rows)
    assert set(document["timings"]) >= {"bi", "cross", "fusion", "cascade@0.3"}
    assert (tmp_path / "smoke.md").read_text().count("| cascade@") == 10
    assert (tmp_path / "smoke.png").stat().st_size > 1000


def test_eval_runs_pawsx_on_a_cross_encoder_and_refuses_embedding_tasks(cross_dir: Path, tmp_path: Path) -> None:
    from paraxl.data.readers import PAWSX_LANGUAGES
    from paraxl.decision.threshold import best_threshold

    root = tmp_path / "data"
    for index, language in enumerate(PAWSX_LANGUAGES):
        for split, seed in (("validation", index), ("test", 50 + index)):
            write_pairs(root / "pawsx" / "resplit" / language / f"{split}.tsv", pair_rows(8, seed))
    out = tmp_path / "eval"
    code, _, stderr = run("eval", str(cross_dir), "--tasks", "tatoeba,pawsx", "--data-dir", str(root),
                          "-o", str(out), "--no-plots")  # fmt: skip
    assert code == 2
    assert stderr.count("\n") == 1 and "is a cross-encoder" in stderr and "tatoeba" in stderr
    code, _, stderr = run("eval", str(cross_dir), "--tasks", "pawsx", "--data-dir", str(root),
                          "-o", str(out), "--no-plots")  # fmt: skip
    assert code == 0, stderr
    document = json.loads((out / "pawsx.json").read_text())
    scorer = open_cross_encoder_scorer(cross_dir)
    fit = [(a, b, y) for i in range(7) for _, a, b, y in pair_rows(8, i)]
    threshold, _ = best_threshold(scorer.score([(a, b) for a, b, _ in fit]), [y for *_, y in fit])
    assert document["scores"]["pooled_threshold"] == pytest.approx(threshold, abs=1e-6)
    assert document["model"]["fingerprint"] == model_folder_fingerprint(cross_dir)
    assert set(document["scores"]["en_to_xx"]["accuracy"]) == set(PAWSX_LANGUAGES) - {"en"}
    assert (out / "summary.md").is_file()
