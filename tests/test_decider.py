"""``decider_for``: an explicit threshold wins; else a calibration of these weights; else refuse."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from paraxl.decision.calibration import fit_calibration
from paraxl.decision.decider import FixedThreshold, decider_for
from paraxl.errors import InputError, ModelFormatError
from paraxl.io.hashing import model_folder_fingerprint
from paraxl.loading.calibration_file import Calibration, save_calibration
from paraxl.loading.model import resolve_model

SCORES = np.array([0.2, 0.81, 0.95])


@pytest.fixture()
def model(tiny_model_dir: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    return folder


def calibrate(folder: Path, fingerprint: str | None = None, backend: str = "torch") -> Calibration:
    rng = np.random.default_rng(0)
    scores = rng.uniform(0.6, 1.0, 40)
    labels = (scores > 0.8).astype(int)
    fitted = replace(
        fit_calibration(scores, labels, method="platt"),
        model_fingerprint=fingerprint or model_folder_fingerprint(folder),
        backend=backend,
        prompt_name="query",
    )
    save_calibration(folder, fitted)
    return fitted


def test_explicit_threshold_wins_and_keeps_the_calibrations_probabilities(model: Path) -> None:
    calibration = calibrate(model)
    decider = decider_for(resolve_model(str(model)), 0.9)
    assert isinstance(decider, FixedThreshold) and decider.threshold == 0.9
    assert decider.method == "fixed-threshold, platt probability" and decider.prompt_name == "query"
    np.testing.assert_array_equal(decider.decide(SCORES), [False, False, True])
    np.testing.assert_array_equal(decider.probability(SCORES), calibration.probability(SCORES))


def test_threshold_without_calibration_has_no_probabilities(model: Path) -> None:
    decider = decider_for(resolve_model(str(model)), 0.5)
    assert decider.method == "fixed-threshold" and decider.prompt_name is None
    np.testing.assert_array_equal(decider.decide(SCORES), SCORES >= 0.5)
    assert np.isnan(decider.probability(SCORES)).all()


def test_calibration_of_these_weights_decides(model: Path) -> None:
    calibration = calibrate(model)
    notes: list[str] = []
    assert decider_for(resolve_model(str(model)), None, note=notes.append) == calibration
    assert notes == []


def test_another_backend_only_earns_a_note(model: Path) -> None:
    calibration = calibrate(model, backend="onnx")
    notes: list[str] = []
    assert decider_for(resolve_model(str(model)), None, note=notes.append) == calibration
    assert len(notes) == 1 and "calibrated with the onnx backend, scoring with torch" in notes[0]


def test_calibration_of_other_weights_refuses_or_is_set_aside(model: Path) -> None:
    calibrate(model, fingerprint="0" * 64)
    resolved = resolve_model(str(model))
    with pytest.raises(ModelFormatError, match="fitted on different weights"):
        decider_for(resolved, None)
    notes: list[str] = []
    decider = decider_for(resolved, 0.7, note=notes.append)
    assert decider == FixedThreshold(0.7)  # no probabilities from a calibration of other weights
    assert notes == [f"note: the calibration of {model} is for other weights; no probabilities"]
    notes.clear()
    decider_for(resolved, 0.7, other_weights_note="deciding at --threshold, no probabilities", note=notes.append)
    assert notes[0].endswith("is for other weights; deciding at --threshold, no probabilities")


def test_neither_calibration_nor_threshold_refuses_or_decides_nothing(model: Path) -> None:
    resolved = resolve_model(str(model))
    with pytest.raises(InputError) as refused:
        decider_for(resolved, None)
    assert str(refused.value) == (
        f"{model} has no calibration (paraxl_calibration.json); "
        f"run `paraxl calibrate {model} --data validation.tsv` first (or pass --threshold T)"
    )
    assert decider_for(resolved, None, required=False) is None  # serve: /paraphrase off
