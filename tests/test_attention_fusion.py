"""Attention fused before int8 quantization (``attention_fusion``), and the int8 recipe kept current.

Oracle: the unfused fp32 graph (the fusion must give its token states), and for the int8 file the
PyTorch BiEncoder (cosine bound of the int8 tests).
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest

from paraxl.inference import attention_fusion, onnx_export, onnx_files
from paraxl.inference.attention_fusion import FUSION_TOLERANCE, fuse_attention
from paraxl.inference.onnx_export import QUANTIZATION, ensure_export, export_onnx
from paraxl.inference.onnx_files import (
    BACKEND_FILES,
    DISABLED_OPTIMIZERS,
    manifest_path,
    open_session,
    session_settings,
)
from paraxl.loading.backends import load_encoder
from paraxl.modeling.bi_encoder import BiEncoder

TEXTS = ["the cat sat on the mat", "x", "", "le chat der hund " * 12, "猫は犬", "a b c d e f g h"]


@pytest.fixture()
def fp32_folder(tiny_model_dir: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    export_onnx(folder, int8=False)
    return folder


def _operators(path: Path) -> Counter[str]:
    return Counter(node.op_type for node in onnx.load(str(path), load_external_data=False).graph.node)


def _layers(folder: Path) -> tuple[int, int, int]:
    config = json.loads((folder / "config.json").read_text())
    return int(config["num_hidden_layers"]), int(config["num_attention_heads"]), int(config["hidden_size"])


def test_fusion_gives_one_operator_per_layer_and_the_same_states(fp32_folder: Path, tmp_path: Path) -> None:
    layers, heads, hidden = _layers(fp32_folder)
    source, target = fp32_folder / BACKEND_FILES["onnx"], tmp_path / "fused.onnx"
    result = fuse_attention(source, target, heads, hidden)
    assert result.fused == layers and _operators(target)["MultiHeadAttention"] == layers
    assert result.max_abs_diff is not None and result.max_abs_diff <= FUSION_TOLERANCE
    assert _operators(target)["Softmax"] == 0 < _operators(source)["Softmax"]
    # the check's oracle, on real tokenized text this time: same token states, padding excluded
    encoder = BiEncoder.load(fp32_folder)
    batch = encoder.tokenize(TEXTS)
    feeds = {name: batch[name].numpy() for name in ("input_ids", "attention_mask")}
    unfused, fused = (open_session(path).run(None, feeds)[0] for path in (source, target))
    real = feeds["attention_mask"].astype(bool)
    np.testing.assert_allclose(fused[real], unfused[real], atol=1e-5)


def test_a_fusion_that_changes_the_states_is_refused(
    fp32_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, heads, hidden = _layers(fp32_folder)
    monkeypatch.setattr(attention_fusion, "_max_abs_diff", lambda first, second: 0.5)
    target = tmp_path / "fused.onnx"
    result = fuse_attention(fp32_folder / BACKEND_FILES["onnx"], target, heads, hidden)
    assert result.fused == 0 and result.max_abs_diff == 0.5 and not target.exists()


def test_int8_falls_back_to_the_unfused_graph(fp32_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(onnx_export, "fuse_attention", lambda *args: attention_fusion.FusionResult(0, None))
    export_onnx(fp32_folder)
    entry = json.loads(manifest_path(fp32_folder).read_text())["files"]["onnx-int8"]
    assert entry["quantization"]["fused_attention"] == 0
    assert _operators(fp32_folder / BACKEND_FILES["onnx-int8"])["MultiHeadAttention"] == 0
    expected = BiEncoder.load(fp32_folder).encode(TEXTS)
    got = load_encoder(str(fp32_folder), "onnx-int8").encode(TEXTS)
    assert float((got * expected).sum(axis=1).min()) > 0.999


def test_int8_is_fused_recorded_and_close_to_torch(fp32_folder: Path) -> None:
    layers, _, _ = _layers(fp32_folder)
    export_onnx(fp32_folder)
    entry = json.loads(manifest_path(fp32_folder).read_text())["files"]["onnx-int8"]
    assert entry["quantization"]["fused_attention"] == layers
    assert entry["quantization"]["attention_fusion"] == QUANTIZATION["attention_fusion"]
    int8_ops = _operators(fp32_folder / BACKEND_FILES["onnx-int8"])
    assert int8_ops["MultiHeadAttention"] == layers
    assert int8_ops["MatMulInteger"] + int8_ops["DynamicQuantizeMatMul"] > 0
    expected = BiEncoder.load(fp32_folder).encode(TEXTS)
    got = load_encoder(str(fp32_folder), "onnx-int8").encode(TEXTS, batch_size=4)
    # the unfused int8 test's bound (measured min cosine 0.99997 on this model)
    assert float((got * expected).sum(axis=1).min()) > 0.999
    assert not list((fp32_folder / "onnx").glob(".fusion-*"))  # the fused fp32 scratch file is gone


def test_an_int8_file_from_an_older_recipe_is_made_again(fp32_folder: Path) -> None:
    export_onnx(fp32_folder)
    assert export_onnx(fp32_folder).up_to_date
    record = json.loads(manifest_path(fp32_folder).read_text())
    del record["files"]["onnx-int8"]["quantization"]["attention_fusion"]  # as exports before the fusion say
    manifest_path(fp32_folder).write_text(json.dumps(record))
    assert [path.name for path in export_onnx(fp32_folder).written] == ["model_qint8.onnx"]
    # and for a folder paraxl owns, opening the int8 backend brings it up to date itself
    record = json.loads(manifest_path(fp32_folder).read_text())
    record["files"]["onnx-int8"]["quantization"]["attention_fusion"] = "none"
    manifest_path(fp32_folder).write_text(json.dumps(record))
    ensure_export(fp32_folder, "onnx-int8")
    record = json.loads(manifest_path(fp32_folder).read_text())
    assert record["files"]["onnx-int8"]["quantization"]["attention_fusion"] == QUANTIZATION["attention_fusion"]


def test_sessions_leave_residual_add_and_layernorm_apart(
    fp32_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """paraxl's sessions run the int8 graph without ONNX Runtime's SkipLayerNormalization, which a
    session with default optimizers would use (so the test would see it if the setting were lost)."""
    import onnxruntime

    assert session_settings()["disabled_optimizers"] == list(DISABLED_OPTIMIZERS) == ["SkipLayerNormFusion"]
    export_onnx(fp32_folder)
    graph = fp32_folder / BACKEND_FILES["onnx-int8"]

    def optimized_by(open_with: object, name: str) -> Counter[str]:
        options = onnx_files.session_options()
        options.optimized_model_filepath = str(tmp_path / name)
        monkeypatch.setattr(onnx_files, "session_options", lambda: options)
        if open_with is None:
            onnxruntime.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        else:
            open_session(graph)
        return _operators(tmp_path / name)

    assert optimized_by(None, "default.onnx")["SkipLayerNormalization"] > 0
    ours = optimized_by(open_session, "paraxl.onnx")
    assert ours["SkipLayerNormalization"] == 0 and ours["LayerNormalization"] > 0
