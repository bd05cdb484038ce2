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
    assert not output.exists()
