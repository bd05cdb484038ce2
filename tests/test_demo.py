"""The README's main job: the short fine-tune demo and its scoring (oracles: naive loops)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from paraxl.cli.main import app
from paraxl.data.readers import PAWSX_LANGUAGES
from paraxl.demo.finetune import DemoSettings, held_out_pairs, score
from paraxl.modeling.bi_encoder import BiEncoder

from .training_helpers import fake_pawsx


def test_held_out_pairs_are_seeded_samples_without_placeholders(tmp_path: Path) -> None:
    data = fake_pawsx(tmp_path / "data")
    settings = DemoSettings(validation_pairs=10, test_pairs=100, seed=3)
    first, again = held_out_pairs(data, settings), held_out_pairs(data, settings)
    other = held_out_pairs(data, DemoSettings(validation_pairs=10, test_pairs=100, seed=4))
    assert first == again
    assert [p.key for p in first.validation["de"]] != [p.key for p in other.validation["de"]]
    for language in PAWSX_LANGUAGES:
        assert len(first.validation[language]) == 10  # 24 usable, 10 drawn
        assert len(first.test[language]) == 32  # all 32 usable test pairs: fewer than asked
        assert all("NS" not in (p.first, p.second) for p in first.validation[language] + first.test[language])


def test_score_matches_a_naive_threshold_search(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = fake_pawsx(tmp_path / "data")
    pairs = held_out_pairs(data, DemoSettings(validation_pairs=12, test_pairs=20))
    encoder = BiEncoder.load(tiny_model_dir)
    result = score(encoder, pairs)

    def cosine(a: str, b: str) -> float:
        x, y = encoder.encode([a, b])
        return float(np.dot(x, y) / (np.linalg.norm(x) * np.linalg.norm(y)))

    fit = [(cosine(p.first, p.second), p.label) for rows in pairs.validation.values() for p in rows]

    def pooled_accuracy(threshold: float) -> float:
        return sum((s >= threshold) == bool(y) for s, y in fit) / len(fit)

    candidates = [s for s, _ in fit] + [max(s for s, _ in fit) + 1.0]
    best = max(pooled_accuracy(t) for t in candidates)
    assert pooled_accuracy(result.threshold) == pytest.approx(best)
    for language, rows in pairs.test.items():
        naive = sum((cosine(p.first, p.second) >= result.threshold) == bool(p.label) for p in rows) / len(rows)
        assert result.per_language[language] == pytest.approx(naive, abs=1e-9)
    assert result.mean == pytest.approx(np.mean(list(result.per_language.values())))


def test_demo_fine_tunes_and_prints_before_and_after(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = fake_pawsx(tmp_path / "data")
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    output = tmp_path / "demo"
    result = CliRunner().invoke(
        app, ["demo", "-m", str(model), "--data-dir", str(data), "--steps", "2", "--batch-size", "8", "-o", str(output)]
    )
    assert result.exit_code == 0, result.stderr
    assert "accuracy before and after the fine-tune" in result.stdout
    assert "the same word-order pairs after fine-tuning" in result.stdout
    assert (output / "final" / "model.safetensors").is_file()
    assert not (output / "checkpoints").exists()
    # a user's folder without an export is scored on torch, and never written into
    assert "off-the-shelf model on torch" in result.stderr and not (model / "onnx").exists()
    assert "score before" in result.stdout and "score after" in result.stdout  # the phase times
    tuned = BiEncoder.load(output / "final").encode(["the cat 1 sat on the sofa"])
    assert not np.allclose(tuned, BiEncoder.load(model).encode(["the cat 1 sat on the sofa"]))


def test_demo_without_data_says_how_to_give_it(tiny_model_dir: Path, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("PARAXL_DATA_DIR", raising=False)
    result = CliRunner().invoke(app, ["demo", "-m", str(tiny_model_dir)])
    assert result.exit_code == 2
    assert "--data-dir" in result.stderr
    missing = CliRunner().invoke(app, ["demo", "-m", str(tiny_model_dir), "--data-dir", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "not found" in missing.stderr
