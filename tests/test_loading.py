"""``paraxl.loading.model``: one model identity (folder, weights fingerprint, encoder, calibration) per spec."""

from __future__ import annotations

import shutil
from dataclasses import FrozenInstanceError, replace
from pathlib import Path

import numpy as np
import pytest

from paraxl.decision.calibration import fit_calibration
from paraxl.errors import InputError, ModelFormatError
from paraxl.io.hashing import model_folder_fingerprint
from paraxl.loading.calibration_file import CALIBRATION_FILE, save_calibration
from paraxl.loading.model import LoadedModel, ResolvedModel, load_model, resolve_model
from paraxl.modeling.bi_encoder import BiEncoder

TEXTS = ["the cat sat on the mat", "le chat", "der hund ran"]


@pytest.fixture()
def model(tiny_model_dir: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    return folder


def test_loaded_model_carries_one_identity(model: Path) -> None:
    loaded = load_model(str(model))
    assert isinstance(loaded, LoadedModel) and isinstance(loaded, ResolvedModel)
    assert (loaded.spec, loaded.folder, loaded.backend) == (str(model), model, "torch")
    assert loaded.weights_fingerprint == model_folder_fingerprint(model)
    assert isinstance(loaded.encoder, BiEncoder)
    np.testing.assert_array_equal(loaded.encoder.encode(TEXTS), BiEncoder.load(model).encode(TEXTS))
    assert loaded.calibration is None  # no paraxl_calibration.json in the folder
    with pytest.raises(FrozenInstanceError):
        loaded.backend = "onnx"  # type: ignore[misc]


def test_calibration_in_the_folder_is_picked_up(model: Path) -> None:
    rng = np.random.default_rng(0)
    scores, labels = rng.uniform(0.6, 1.0, 30), np.arange(30) % 2
    fitted = replace(fit_calibration(scores, labels, method="platt"), model_fingerprint=model_folder_fingerprint(model))
    save_calibration(model, fitted)
    loaded = load_model(str(model))
    assert loaded.calibration == fitted
    assert loaded.calibration.model_fingerprint == loaded.weights_fingerprint


def test_resolving_loads_no_weights_and_reads_the_calibration_only_when_asked(model: Path) -> None:
    (model / CALIBRATION_FILE).write_text("{not json")
    resolved = resolve_model(str(model))
    assert resolved.weights_fingerprint == model_folder_fingerprint(model)
    assert not hasattr(resolved, "encoder")
    # encoding never needs the calibration: a damaged file stops only the commands that decide
    assert load_model(str(model)).encoder.dimension == 32
    with pytest.raises(ModelFormatError, match="not valid JSON"):
        _ = resolved.calibration


def test_weights_fingerprint_is_the_same_on_every_backend(model: Path) -> None:
    from paraxl.inference.onnx_export import export_onnx

    export_onnx(model, int8=False)
    torch_model, onnx_model = load_model(str(model), "torch"), load_model(str(model), "onnx")
    assert torch_model.weights_fingerprint == onnx_model.weights_fingerprint == model_folder_fingerprint(model)
    assert torch_model.encoder.fingerprint != onnx_model.encoder.fingerprint  # vectors differ per backend


def test_unknown_backend_is_refused_before_the_spec_is_resolved() -> None:
    with pytest.raises(InputError, match="unknown backend 'tensorrt'; use one of torch, onnx, onnx-int8"):
        resolve_model("bundled:multilingual-e5-small", "tensorrt")  # would build the bundled model otherwise
