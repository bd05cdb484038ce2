"""benchmarks/teacher_scores.py: the pairs the trainer can draw, scored by a cross-encoder, as a distill file."""

from __future__ import annotations

import csv
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

from paraxl.training.distillation import TeacherScores

from .scripts import load_benchmark_script
from .training_helpers import fake_pawsx


@pytest.fixture(scope="module")
def script() -> ModuleType:
    return load_benchmark_script("teacher_scores")


def expected_pairs(train_file: Path) -> set[frozenset[str]]:
    """From the TSV itself: each label-1 pair, each label-0 pair, and paraphrase x label-0 partner."""
    rows = list(csv.DictReader(train_file.open(encoding="utf-8"), delimiter="\t"))
    rows = [row for row in rows if row["sentence1"] != "NS"]
    pairs = {frozenset((row["sentence1"], row["sentence2"])) for row in rows}
    partners = {(row["sentence1"], row["label"]): row["sentence2"] for row in rows}
    for first in {row["sentence1"] for row in rows}:
        pairs.add(frozenset((partners[first, "1"], partners[first, "0"])))
    return pairs


def test_scores_every_trainable_pair_once_with_the_teachers_sigmoid(
    script: ModuleType, tiny_model_dir: Path, tmp_path: Path
) -> None:
    data = fake_pawsx(tmp_path / "data")
    output = tmp_path / "teacher" / "scores.tsv"
    argv = ["--teacher", str(tiny_model_dir), "--data-dir", str(data), "--languages", "en,de"]
    torch.manual_seed(0)  # the tiny model has no trained head: the same seed gives the same fresh head
    assert script.main([*argv, "--output", str(output), "--max-length", "64", "--batch-size", "5"]) == 0

    rows = list(csv.DictReader(output.open(encoding="utf-8"), delimiter="\t"))
    pairs = [(row["sentence1"], row["sentence2"]) for row in rows]
    # de repeats en's sentences in the fake data: each pair once, 3 per source sentence
    assert len(pairs) == 24 * 3 and {frozenset(pair) for pair in pairs} == expected_pairs(
        data / "pawsx" / "resplit" / "en" / "train.tsv"
    )

    from sentence_transformers.cross_encoder import CrossEncoder

    torch.manual_seed(0)
    reference = CrossEncoder(str(tiny_model_dir), num_labels=1, max_length=64, activation_fn=torch.nn.Sigmoid())
    expected = reference.predict(pairs, batch_size=16)
    scores = np.array([float(row["score"]) for row in rows])
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    assert ((scores > 0) & (scores < 1)).all()

    teacher = TeacherScores.read(output)  # what `distill.scores` reads
    assert len(teacher) == len(pairs) and teacher.scores[pairs[0][::-1]] == pytest.approx(scores[0], abs=1e-6)


def test_bad_input_is_a_one_line_error(
    script: ModuleType, tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = fake_pawsx(tmp_path / "data")
    output = tmp_path / "scores.tsv"
    common = ["--data-dir", str(data), "--output", str(output)]
    assert script.main(["--teacher", str(tiny_model_dir), *common, "--languages", "en,xx"]) == 2
    assert "unknown PAWS-X language(s) ['xx']" in capsys.readouterr().err
    assert script.main(["--teacher", str(tmp_path), *common]) == 2
    assert "not a model folder" in capsys.readouterr().err
    assert (
        script.main(["--teacher", str(tiny_model_dir), "--data-dir", str(tmp_path / "nope"), "--output", str(output)])
        == 2
    )
    assert "not found" in capsys.readouterr().err
    assert script.main(["--teacher", str(tiny_model_dir), *common, "--chunk-size", "0"]) == 2
    assert "error: --chunk-size must be at least 1, got 0" in capsys.readouterr().err
    assert not output.exists()


def test_an_interrupted_scoring_resumes_where_it_stopped(
    script: ModuleType, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = fake_pawsx(tmp_path / "data")
    common = ["--teacher", str(tiny_model_dir), "--data-dir", str(data), "--languages", "en", "--max-length", "64"]
    torch.manual_seed(0)
    assert script.main([*common, "--output", str(tmp_path / "whole.tsv")]) == 0
    whole = (tmp_path / "whole.tsv").read_text(encoding="utf-8")

    output = tmp_path / "resumed.tsv"
    real_score = script.score
    calls: list[int] = []

    def score_then_die(model: object, pairs: list[tuple[str, str]], batch_size: int) -> list[float]:
        if len(calls) == 3:
            raise KeyboardInterrupt  # the kill arrives while the 4th chunk is being scored
        calls.append(len(pairs))
        return real_score(model, pairs, batch_size)

    monkeypatch.setattr(script, "score", score_then_die)
    torch.manual_seed(0)
    with pytest.raises(KeyboardInterrupt):
        script.main([*common, "--output", str(output), "--chunk-size", "10"])
    assert not output.exists()
    partial = output.with_name("resumed.tsv.partial")
    assert len(partial.read_text(encoding="utf-8").splitlines()) == 1 + 30
    with partial.open("a", encoding="utf-8") as handle:
        handle.write("a line cut by the kill\t")  # no newline: dropped and scored again

    counted: list[int] = []

    def counting(model: object, pairs: list[tuple[str, str]], batch_size: int) -> list[float]:
        counted.append(len(pairs))
        return real_score(model, pairs, batch_size)

    monkeypatch.setattr(script, "score", counting)
    torch.manual_seed(0)  # the same fresh head as the first sitting
    assert script.main([*common, "--output", str(output), "--chunk-size", "10"]) == 0
    assert sum(counted) == 24 * 3 - 30  # only what the first sitting had not saved
    assert not partial.exists() and not output.with_name("resumed.tsv.partial.json").exists()
    resumed, reference = output.read_text(encoding="utf-8").splitlines(), whole.splitlines()
    assert [line.split("\t")[:2] for line in resumed] == [line.split("\t")[:2] for line in reference]
    np.testing.assert_allclose(
        [float(line.split("\t")[2]) for line in resumed[1:]],
        [float(line.split("\t")[2]) for line in reference[1:]],
        atol=1e-5,
    )


def test_a_partial_scoring_of_other_settings_is_refused(
    script: ModuleType,
    tiny_model_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = fake_pawsx(tmp_path / "data")
    output = tmp_path / "scores.tsv"
    common = ["--teacher", str(tiny_model_dir), "--data-dir", str(data), "--output", str(output), "--chunk-size", "10"]

    def die(model: object, pairs: list[tuple[str, str]], batch_size: int) -> list[float]:
        raise KeyboardInterrupt

    monkeypatch.setattr(script, "score", die)
    with pytest.raises(KeyboardInterrupt):
        script.main([*common, "--languages", "en"])
    partial_before = output.with_name("scores.tsv.partial").read_text(encoding="utf-8")
    assert script.main([*common, "--languages", "en,de"]) == 2
    error = capsys.readouterr().err
    assert "other languages is here" in error and "delete it or use another --output" in error
    assert script.main([*common, "--languages", "en", "--max-length", "32"]) == 2
    assert "other max_length" in capsys.readouterr().err
    assert output.with_name("scores.tsv.partial").read_text(encoding="utf-8") == partial_before  # nothing lost

    partial = output.with_name("scores.tsv.partial")
    for bad_row in ("one\ttwo\n", "x\ty\t0.5\n"):  # a row cut short; a pair the data does not have next
        partial.write_text(partial_before + bad_row, encoding="utf-8")
        assert script.main([*common, "--languages", "en"]) == 2
        assert "scores.tsv.partial: line 2: not the next scored pair of the data" in capsys.readouterr().err


def test_gold_labels_give_each_trainable_pair_its_label_from_the_data(script: ModuleType, tmp_path: Path) -> None:
    data = fake_pawsx(tmp_path / "data")
    output = tmp_path / "gold" / "labels.tsv"
    assert script.main(["--gold-labels", "--data-dir", str(data), "--languages", "en", "--output", str(output)]) == 0

    # the oracle, from the TSV itself: a label-1 row is a paraphrase; a label-0 row, and the
    # paraphrase of a sentence with its label-0 partner, are not
    train_file = data / "pawsx" / "resplit" / "en" / "train.tsv"
    rows = [
        row for row in csv.DictReader(train_file.open(encoding="utf-8"), delimiter="\t") if row["sentence1"] != "NS"
    ]
    expected = {frozenset((row["sentence1"], row["sentence2"])): float(row["label"]) for row in rows}
    partners = {(row["sentence1"], row["label"]): row["sentence2"] for row in rows}
    for first in {row["sentence1"] for row in rows}:
        expected[frozenset((partners[first, "1"], partners[first, "0"]))] = 0.0

    teacher = TeacherScores.read(output)
    written = {frozenset(pair): score for pair, score in teacher.scores.items()}
    assert written == expected and set(written.values()) == {0.0, 1.0}
    assert not list(output.parent.glob("*.tmp"))
