"""Weight averaging (``paraxl soup``): checked against a per-tensor numpy mean and by loading the result."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file as load_numpy
from safetensors.torch import load_file, save_file
from sentence_transformers import SentenceTransformer
from typer.testing import CliRunner

from paraxl.cli.main import app
from paraxl.errors import InputError, ModelFormatError
from paraxl.loading.soup import average_models
from paraxl.modeling.bi_encoder import BiEncoder

from .tiny import build_tiny_encoder, save_tiny

TEXTS = ["the cat sat on the mat", "le chat", "der hund ran"]


@pytest.fixture()
def three_runs(tmp_path: Path) -> list[Path]:
    """Three 'runs' of one architecture with different weights (different init seeds)."""
    return [save_tiny(tmp_path / f"run-{seed}", seed=seed) for seed in (0, 1, 2)]


def test_weighted_mean_matches_a_numpy_mean_per_tensor(three_runs: list[Path], tmp_path: Path) -> None:
    weights = [2.0, 1.0, 1.0]
    soup = average_models(three_runs, tmp_path / "soup", weights)
    averaged = load_numpy(str(soup / "model.safetensors"))
    runs = [load_numpy(str(run / "model.safetensors")) for run in three_runs]
    assert averaged.keys() == runs[0].keys()
    for name, tensor in averaged.items():
        if np.issubdtype(tensor.dtype, np.floating):
            expected = sum(w / 4.0 * run[name].astype(np.float64) for w, run in zip(weights, runs, strict=True))
            np.testing.assert_allclose(tensor, expected.astype(tensor.dtype), rtol=0, atol=1e-7, err_msg=name)
            assert tensor.dtype == runs[0][name].dtype
        else:
            np.testing.assert_array_equal(tensor, runs[0][name])
    provenance = json.loads((soup / "soup.json").read_text())
    assert [source["weight"] for source in provenance["sources"]] == [0.5, 0.25, 0.25]


def test_one_element_by_a_plain_loop(three_runs: list[Path], tmp_path: Path) -> None:
    soup = average_models(three_runs[:2], tmp_path / "soup")
    name = "encoder.layer.0.attention.self.query.weight"
    first, second = (load_file(str(run / "model.safetensors"))[name] for run in three_runs[:2])
    averaged = load_file(str(soup / "model.safetensors"))[name]
    for row in range(first.shape[0]):
        for column in range(first.shape[1]):
            expected = (float(first[row, column]) + float(second[row, column])) / 2
            assert float(averaged[row, column]) == pytest.approx(expected, abs=1e-7)


def test_soup_of_copies_is_the_model_and_loads_everywhere(three_runs: list[Path], tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(three_runs[0], copy)
    soup = average_models([three_runs[0], copy, copy], tmp_path / "soup")
    original = BiEncoder.load(three_runs[0]).encode(TEXTS)
    np.testing.assert_array_equal(BiEncoder.load(soup).encode(TEXTS), original)
    st_model = SentenceTransformer(str(soup), device="cpu")
    np.testing.assert_allclose(st_model.encode(TEXTS, prompt_name="query"), original, atol=1e-6)


def test_average_of_two_runs_encodes_differently_from_each(three_runs: list[Path], tmp_path: Path) -> None:
    soup = BiEncoder.load(average_models(three_runs[:2], tmp_path / "soup")).encode(TEXTS)
    for run in three_runs[:2]:
        assert not np.allclose(soup, BiEncoder.load(run).encode(TEXTS), atol=1e-3)


def test_onnx_exports_of_an_input_are_not_copied(three_runs: list[Path], tmp_path: Path) -> None:
    (three_runs[0] / "onnx").mkdir()
    (three_runs[0] / "onnx" / "model.onnx").write_bytes(b"stale graph of the old weights")
    soup = average_models(three_runs[:2], tmp_path / "soup")
    assert not (soup / "onnx").exists()


def test_bad_inputs_are_refused_before_anything_is_written(three_runs: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "soup"
    with pytest.raises(InputError, match="2 weight"):
        average_models(three_runs, out, [1.0, 1.0])
    with pytest.raises(InputError, match="positive"):
        average_models(three_runs[:2], out, [1.0, float("nan")])
    for folders in ([three_runs[0]], [three_runs[0], three_runs[0] / ".." / three_runs[0].name], []):
        with pytest.raises(InputError, match="2 or more distinct"):
            average_models(folders, out)
    with pytest.raises(InputError, match="one of the input models"):
        average_models(three_runs[:2], three_runs[1])
    out.mkdir()
    with pytest.raises(InputError, match="already exists"):
        average_models(three_runs[:2], out)
    out.rmdir()

    other = tmp_path / "other-architecture"
    encoder = build_tiny_encoder(seed=3)
    encoder.backbone.config.hidden_dropout_prob = 0.3
    encoder.save(other)
    with pytest.raises(ModelFormatError, match=r"config\.json: differs"):
        average_models([three_runs[0], other], out)

    renamed = tmp_path / "renamed"
    shutil.copytree(three_runs[1], renamed)
    tensors = load_file(str(renamed / "model.safetensors"))
    tensors["extra.weight"] = torch.zeros(2)
    save_file(tensors, str(renamed / "model.safetensors"))
    with pytest.raises(ModelFormatError, match="other parameter names"):
        average_models([three_runs[0], renamed], out)

    broken = tmp_path / "broken"
    shutil.copytree(three_runs[1], broken)
    (broken / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ModelFormatError, match="not a readable safetensors"):
        average_models([three_runs[0], broken], out)
    assert not out.exists()


def test_cli_writes_a_soup_and_reports_errors_in_one_line(three_runs: list[Path], tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "soup"
    result = runner.invoke(app, ["soup", str(three_runs[0]), str(three_runs[1]), "-o", str(out), "--weights", "3,1"])
    assert result.exit_code == 0, result.stderr
    assert [s["weight"] for s in json.loads((out / "soup.json").read_text())["sources"]] == [0.75, 0.25]
    result = runner.invoke(app, ["soup", str(three_runs[0]), str(three_runs[1]), "-o", str(out)])
    assert result.exit_code == 2
    assert "already exists" in result.stderr and "Traceback" not in result.stderr
    pair = [str(three_runs[0]), str(three_runs[1])]
    result = runner.invoke(app, ["soup", *pair, "-o", str(tmp_path / "x"), "--weights", "a,b"])
    assert result.exit_code == 2 and "comma-separated numbers" in result.stderr
    same_twice = [str(three_runs[0]), str(three_runs[0] / ".." / three_runs[0].name)]
    for models in ([str(three_runs[0])], same_twice):
        result = runner.invoke(app, ["soup", *models, "-o", str(tmp_path / "y")])
        assert result.exit_code == 2 and "2 or more distinct" in result.stderr, result.stderr
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_a_stale_lock_file_does_not_change_the_layout(three_runs: list[Path], tmp_path: Path) -> None:
    # a writer killed with SIGKILL leaves its empty lock file behind in the model folder
    (three_runs[0] / ".paraxl.lock").touch()
    average_models(three_runs[:2], tmp_path / "soup")
    assert not (tmp_path / "soup" / ".paraxl.lock").exists()
