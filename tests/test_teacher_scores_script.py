"""benchmarks/teacher_scores.py: the pairs the trainer can draw, scored by a cross-encoder through
``paraxl label``'s library, as a distill file."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from sentence_transformers.cross_encoder import CrossEncoder

from paraxl.training.distillation import TeacherScores
from paraxl.training.pair_labels import Labeller

from .scripts import load_benchmark_script
from .test_pair_labels import Dying
from .test_serve_cross_encoder import save_tiny_cross_encoder
from .training_helpers import fake_pawsx


@pytest.fixture(scope="module")
def script() -> ModuleType:
    return load_benchmark_script("teacher_scores")


@pytest.fixture(scope="module")
def cross_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_cross_encoder(tiny_model_dir, tmp_path_factory.mktemp("cross") / "ce")


def expected_pairs(train_file: Path) -> set[frozenset[str]]:
    """From the TSV itself: each label-1 pair, each label-0 pair, and paraphrase x label-0 partner."""
    rows = list(csv.DictReader(train_file.read_text(encoding="utf-8").splitlines(), delimiter="\t"))
    rows = [row for row in rows if row["sentence1"] != "NS"]
    pairs = {frozenset((row["sentence1"], row["sentence2"])) for row in rows}
    partners = {(row["sentence1"], row["label"]): row["sentence2"] for row in rows}
    for first in {row["sentence1"] for row in rows}:
        pairs.add(frozenset((partners[first, "1"], partners[first, "0"])))
    return pairs


def test_scores_every_trainable_pair_once_with_the_teachers_sigmoid(
    script: ModuleType, cross_dir: Path, tmp_path: Path
) -> None:
    data = fake_pawsx(tmp_path / "data")
    output = tmp_path / "teacher" / "scores.tsv"
    argv = ["--teacher", str(cross_dir), "--data-dir", str(data), "--languages", "en,de"]
    assert script.main([*argv, "--output", str(output), "--max-length", "64", "--batch-size", "5"]) == 0

    lines = output.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "sentence1\tsentence2\tscore"  # the layout the script always wrote
    rows = list(csv.DictReader(lines, delimiter="\t"))
    pairs = [(row["sentence1"], row["sentence2"]) for row in rows]
    # de repeats en's sentences in the fake data: each pair once, 3 per source sentence
    assert len(pairs) == 24 * 3 and {frozenset(pair) for pair in pairs} == expected_pairs(
        data / "pawsx" / "resplit" / "en" / "train.tsv"
    )
    reference = CrossEncoder(str(cross_dir), max_length=64)
    expected = reference.predict(pairs, batch_size=5, convert_to_numpy=True)  # one chunk: the same batches
    scores = np.array([float(row["score"]) for row in rows])
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-6)
    assert ((scores > 0) & (scores < 1)).all()

    teacher = TeacherScores.read(output)  # what `distill.scores` reads
    assert len(teacher) == len(pairs) and teacher.scores[pairs[0][::-1]] == pytest.approx(scores[0], abs=1e-12)
    assert sorted(path.name for path in output.parent.iterdir()) == ["scores.tsv"]


def test_bad_input_is_a_one_line_error(
    script: ModuleType,
    tiny_model_dir: Path,
    cross_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = fake_pawsx(tmp_path / "data")
    output = tmp_path / "scores.tsv"
    common = ["--data-dir", str(data), "--output", str(output)]
    assert script.main(["--teacher", str(cross_dir), *common, "--languages", "en,xx"]) == 2
    assert "unknown PAWS-X language(s) ['xx']" in capsys.readouterr().err
    assert script.main(["--teacher", str(tmp_path), *common]) == 2
    assert "not a model folder" in capsys.readouterr().err
    assert script.main(["--teacher", str(tiny_model_dir), *common]) == 2
    assert "is not a cross-encoder" in capsys.readouterr().err
    assert (
        script.main(["--teacher", str(cross_dir), "--data-dir", str(tmp_path / "nope"), "--output", str(output)]) == 2
    )
    assert "not found" in capsys.readouterr().err
    assert script.main(["--teacher", str(cross_dir), *common, "--chunk-size", "0"]) == 2
    assert "error: --chunk-size must be at least 1, got 0" in capsys.readouterr().err
    assert not output.exists()


def test_a_killed_scoring_resumes_and_one_of_other_settings_is_refused(
    script: ModuleType,
    cross_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = fake_pawsx(tmp_path / "data")
    common = ["--teacher", str(cross_dir), "--data-dir", str(data), "--chunk-size", "10", "--max-length", "64"]
    assert script.main([*common, "--languages", "en", "--output", str(tmp_path / "whole.tsv")]) == 0

    output = tmp_path / "scores.tsv"
    real = script.cross_encoder_labeller

    def dying(*args: Any, **kwargs: Any) -> Labeller:
        labeller: Labeller = real(*args, **kwargs)
        return dataclasses.replace(labeller, open=lambda: Dying(labeller.open(), 3))  # killed in the 4th chunk

    monkeypatch.setattr(script, "cross_encoder_labeller", dying)
    with pytest.raises(KeyboardInterrupt):
        script.main([*common, "--languages", "en", "--output", str(output)])
    partial = output.with_name("scores.tsv.partial")
    before = partial.read_bytes()
    assert len(before.splitlines()) == 1 + 30

    # other pairs (here: another language whose texts differ from en's) are another input
    train = data / "pawsx" / "resplit" / "fr" / "train.tsv"
    train.write_text(train.read_text(encoding="utf-8").replace("the ", "le "), encoding="utf-8")
    assert script.main([*common, "--languages", "en,fr", "--output", str(output)]) == 2
    assert "a partial labelling of another input (sha256 of its bytes) is here" in capsys.readouterr().err
    assert script.main([*common, "--languages", "en", "--output", str(output), "--max-length", "32"]) == 2
    assert "another max length" in capsys.readouterr().err
    assert partial.read_bytes() == before  # nothing lost

    monkeypatch.undo()
    assert script.main([*common, "--languages", "en", "--output", str(output)]) == 0
    assert "30 of them scored in an earlier sitting" in capsys.readouterr().out
    assert output.read_bytes() == (tmp_path / "whole.tsv").read_bytes()


def test_gold_labels_give_each_trainable_pair_its_label_from_the_data(script: ModuleType, tmp_path: Path) -> None:
    data = fake_pawsx(tmp_path / "data")
    output = tmp_path / "gold" / "labels.tsv"
    assert script.main(["--gold-labels", "--data-dir", str(data), "--languages", "en", "--output", str(output)]) == 0

    # the oracle, from the TSV itself: a label-1 row is a paraphrase; a label-0 row, and the
    # paraphrase of a sentence with its label-0 partner, are not
    train_file = data / "pawsx" / "resplit" / "en" / "train.tsv"
    rows = [
        row
        for row in csv.DictReader(train_file.read_text(encoding="utf-8").splitlines(), delimiter="\t")
        if row["sentence1"] != "NS"
    ]
    expected = {frozenset((row["sentence1"], row["sentence2"])): float(row["label"]) for row in rows}
    partners = {(row["sentence1"], row["label"]): row["sentence2"] for row in rows}
    for first in {row["sentence1"] for row in rows}:
        expected[frozenset((partners[first, "1"], partners[first, "0"]))] = 0.0

    teacher = TeacherScores.read(output)
    written = {frozenset(pair): score for pair, score in teacher.scores.items()}
    assert written == expected and set(written.values()) == {0.0, 1.0}
    assert not list(output.parent.glob("*.tmp"))
