"""benchmarks/cross_encoder_pawsx.py on the tiny model and fake PAWS-X resplit data: one epoch, in-process."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from paraxl.data.readers import PAWSX_LANGUAGES
from paraxl.decision.threshold import accuracy_at, best_threshold

from .scripts import load_benchmark_script
from .training_helpers import fake_pawsx


def cross_encoder_script() -> ModuleType:
    return load_benchmark_script("cross_encoder_pawsx")


def test_trains_one_epoch_and_reports_the_pooled_threshold_protocol(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = fake_pawsx(tmp_path / "data")
    output = tmp_path / "results" / "ce.json"
    argv = ["--model", str(tiny_model_dir), "--data-dir", str(data), "--epochs", "1", "--batch-size", "16"]
    argv += ["--lr", "1e-3", "--max-length", "128", "--limit-train", "16", "--seed", "1", "--output", str(output)]
    assert cross_encoder_script().main(argv) == 0
    report = json.loads(output.read_text())
    assert output.with_suffix(".md").is_file()
    assert "| epoch |" in capsys.readouterr().out

    assert report["model"]["max_length"] == 64  # clamped to the tiny model's 64 positions
    assert "classifier.weight" in report["model"]["fresh_parameters"]
    assert not any(name.endswith("word_embeddings.weight") for name in report["model"]["fresh_parameters"])
    assert report["data"]["train_pairs"] == dict.fromkeys(PAWSX_LANGUAGES, 16)
    assert report["data"]["train_untranslated_left_out"] == dict.fromkeys(PAWSX_LANGUAGES, 1)
    assert set(report["data"]["files"]) == {
        f"{lang}/{split}.tsv" for lang in PAWSX_LANGUAGES for split in ("train", "validation", "test")
    }
    assert report["training"]["steps"] == 7  # 112 pairs / 16
    assert report["training"]["examples_per_second"] > 0

    [result] = report["evaluations"]
    assert result["epoch"] == 1 and result["inference"]["pairs"] == 7 * 33
    accuracy = result["test_accuracy"]
    assert list(accuracy) == list(PAWSX_LANGUAGES)
    assert all(0.0 <= value <= 1.0 for value in accuracy.values())
    assert result["test_accuracy_mean"] == pytest.approx(np.mean(list(accuracy.values())))
    assert report["final"]["test_accuracy_mean"] == result["test_accuracy_mean"]

    # the threshold is the best one on the pooled validation scores, applied unchanged to each test split
    scores = report["scores"]
    validation = scores["validation"]
    threshold, fit_accuracy = best_threshold(
        np.concatenate([validation[lang]["scores"] for lang in PAWSX_LANGUAGES]),
        np.concatenate([validation[lang]["labels"] for lang in PAWSX_LANGUAGES]),
    )
    assert result["threshold"] == threshold and result["validation_accuracy"] == fit_accuracy
    for lang in ("en", "ja"):
        test = scores["test"][lang]
        assert len(test["scores"]) == 33  # NS pairs kept in monolingual scoring, as the bi-encoder task does
        assert accuracy[lang] == accuracy_at(test["scores"], test["labels"], result["threshold"])

    cross = result["en_to_xx"]
    assert set(cross["accuracy"]) == set(PAWSX_LANGUAGES) - {"en"}
    assert cross["n_test"]["de"] == 32 and cross["dropped"]["test"]["de"] == 1  # en's ns0 row is NS
    assert cross["mean"] == pytest.approx(np.mean(list(cross["accuracy"].values())))


def test_unknown_language_and_missing_data_are_one_line_errors(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = cross_encoder_script()
    output = tmp_path / "ce.json"
    data = fake_pawsx(tmp_path / "data")
    common = ["--model", str(tiny_model_dir), "--output", str(output)]
    assert script.main([*common, "--data-dir", str(data), "--languages", "en,xx"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown PAWS-X language(s) ['xx']") and "en de es fr ja ko zh" in err
    assert script.main([*common, "--data-dir", str(tmp_path / "nope")]) == 2
    assert "not found" in capsys.readouterr().err
    assert not output.exists()


def test_a_run_stopped_after_an_epoch_resumes_to_the_uninterrupted_result(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = cross_encoder_script()
    data = fake_pawsx(tmp_path / "data")
    common = ["--model", str(tiny_model_dir), "--data-dir", str(data), "--epochs", "2", "--batch-size", "16"]
    common += ["--lr", "1e-3", "--limit-train", "16", "--seed", "1"]
    whole, pieces, checkpoints = tmp_path / "whole.json", tmp_path / "pieces.json", tmp_path / "checkpoints"
    assert script.main([*common, "--output", str(whole)]) == 0

    resumable = [*common, "--output", str(pieces), "--checkpoint-dir", str(checkpoints)]
    assert script.main([*resumable, "--stop-after-epochs", "1"]) == 0
    first = json.loads(pieces.read_text())
    assert first["training"]["complete"] is False and first["training"]["epochs_completed"] == 1
    assert [result["epoch"] for result in first["evaluations"]] == [1]
    assert "1 of 2 epochs so far" in pieces.with_suffix(".md").read_text()
    assert [path.name for path in checkpoints.glob("checkpoint-*")] == ["checkpoint-7"]  # 112 pairs / 16

    # other settings in the same folder: refused before anything trains, naming what differs
    assert script.main([*resumable[:-2], "--lr", "1e-4", *resumable[-4:]]) == 2
    assert "other settings (lr)" in capsys.readouterr().err

    # a folder with a Trainer checkpoint that this script did not write: refused, not overwritten
    foreign = tmp_path / "foreign"
    shutil.copytree(checkpoints / "checkpoint-7", foreign / "checkpoint-7")
    assert script.main([*common, "--output", str(tmp_path / "f.json"), "--checkpoint-dir", str(foreign)]) == 2
    assert "holds a Trainer checkpoint but no resume.json" in capsys.readouterr().err

    assert script.main(resumable) == 0
    assert "resuming from" in capsys.readouterr().out
    second, reference = json.loads(pieces.read_text()), json.loads(whole.read_text())
    assert second["training"]["complete"] is True and second["training"]["steps"] == 14
    assert [result["epoch"] for result in second["evaluations"]] == [1, 2]
    assert second["training"]["resumed_from"].endswith("checkpoint-7")
    # same weights at the end: the schedule, optimizer state and data order carried over the break
    for lang in ("en", "zh"):
        np.testing.assert_allclose(
            second["scores"]["test"][lang]["scores"], reference["scores"]["test"][lang]["scores"], atol=1e-5
        )
    assert second["evaluations"][0]["test_accuracy"] == reference["evaluations"][0]["test_accuracy"]


def test_stop_after_epochs_needs_a_checkpoint_dir(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = fake_pawsx(tmp_path / "data")
    argv = ["--model", str(tiny_model_dir), "--data-dir", str(data), "--stop-after-epochs", "1"]
    assert cross_encoder_script().main([*argv, "--output", str(tmp_path / "ce.json")]) == 2
    assert "--stop-after-epochs needs --checkpoint-dir" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "value"),
    [("--epochs", "0"), ("--limit-train", "0"), ("--stop-after-epochs", "-1"), ("--max-length", "0")],
)
def test_counts_below_one_are_a_one_line_error(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    data = fake_pawsx(tmp_path / "data")
    argv = ["--model", str(tiny_model_dir), "--data-dir", str(data), "--checkpoint-dir", str(tmp_path / "ckpt")]
    assert cross_encoder_script().main([*argv, option, value, "--output", str(tmp_path / "ce.json")]) == 2
    assert f"error: {option} must be at least 1, got {value}" in capsys.readouterr().err
    assert not (tmp_path / "ce.json").exists()
