"""Export a cross-encoder folder to ONNX (fp32) and int8 (dynamic quantization), inside the folder.

The bi-encoder's conventions (``onnx_export``) where they apply: the same files and record
(``onnx_files``; the record adds ``kind``, the graph's inputs and ``max_length``, see
``cross_encoder_onnx``), the same fingerprint of the source weights, the legacy TorchScript exporter
with eager attention at the same opset, the same quantization settings, every file written
atomically under the folder's lock and the record last. ``paraxl export-onnx`` calls this for a
cross-encoder folder (``onnx_export.export_onnx`` refuses one).

The graph is the Hugging Face ``...ForSequenceClassification`` call that ``CrossEncoder.predict``
makes: ``model(input_ids, attention_mask[, token_type_ids]).logits``, (batch, 1); the sigmoid is
left to the scorer. Each file is checked against torch before it is kept
(``cross_encoder_check``: fp32 within 1e-5 on scores, int8 within a loose sanity bound) and the
differences join its record.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import torch

from paraxl.errors import ModelFormatError
from paraxl.inference.cross_encoder_check import check_cross_encoder_graph
from paraxl.inference.cross_encoder_onnx import (
    CROSS_ENCODER_KIND,
    FEATURES,
    LOGIT_CHECK_KEY,
    LOGITS,
    SCORE_CHECK_KEY,
    CrossEncoderGraph,
    graph_fields,
)
from paraxl.inference.onnx_export import (  # the bi-encoder export's record and quantization, shared
    OPSET,
    ExportReport,
    _file_entry,
    _file_matches,
    _int8_current,
    _new_manifest,
    _ready_to_trace,
    quantize_int8,
)
from paraxl.inference.onnx_export import _current_manifest as _current_record
from paraxl.inference.onnx_files import BACKEND_FILES, ExportedFile, manifest_path
from paraxl.io.atomic import atomic_path, write_json_atomic
from paraxl.io.hashing import model_folder_fingerprint
from paraxl.io.locks import folder_lock
from paraxl.modeling.cross_encoder import check_one_output, check_raw_pairs, is_cross_encoder, load_cross_encoder

# Pairs for tracing (padded, batch 2): the check must see other batch sizes and lengths, or a
# shape-specialised graph would pass unnoticed.
_TRACE_PAIRS = (("paraxl export: a first sentence long enough to need padding", "x"), ("y", "a second one"))


def export_cross_encoder(folder: Path, int8: bool = True, force: bool = False) -> ExportReport:
    """Write (or bring up to date) the fp32 ONNX file of the cross-encoder in ``folder`` and, with
    ``int8``, the int8 one; as ``onnx_export.export_onnx`` does for a bi-encoder (files already made
    from the current weights are kept unless ``force``; a new fp32 file drops an older int8 one)."""
    if not is_cross_encoder(folder):
        raise ModelFormatError(f"{folder}: not a cross-encoder (a sentence embedder: no sequence-classification head)")
    check_one_output(folder)
    start = time.perf_counter()
    with folder_lock(folder, "model folder"):  # a concurrent export would rewrite the same files
        fingerprint = model_folder_fingerprint(folder)
        manifest = None if force else _current_manifest(folder, fingerprint)
        written: list[Path] = []
        if manifest is None or not _file_matches(folder, manifest, "onnx"):
            entry, names, max_length = _export_fp32(folder)
            manifest = _new_manifest(fingerprint) | {
                "kind": CROSS_ENCODER_KIND,
                "inputs": list(names),
                "output": LOGITS,
                "max_length": max_length,
            }
            manifest["files"]["onnx"] = entry
            written.append(folder / BACKEND_FILES["onnx"])
            (folder / BACKEND_FILES["onnx-int8"]).unlink(missing_ok=True)
        if int8 and (written or not _file_matches(folder, manifest, "onnx-int8") or not _int8_current(manifest)):
            manifest["files"]["onnx-int8"] = _quantize(folder, graph_fields(manifest, folder))
            written.append(folder / BACKEND_FILES["onnx-int8"])
        if written:
            write_json_atomic(manifest_path(folder), manifest, indent=2)
    return ExportReport(folder, written, time.perf_counter() - start)


def _current_manifest(folder: Path, fingerprint: str) -> dict[str, Any] | None:
    """The record if it is a cross-encoder's, of this format, for the current weights; else None (re-export)."""
    manifest = _current_record(folder, fingerprint)  # readable, this format, these weights
    if manifest is None or manifest.get("kind") != CROSS_ENCODER_KIND:
        return None
    try:
        graph_fields(manifest, folder)
    except ModelFormatError:
        return None
    return manifest


def _export_fp32(folder: Path) -> tuple[dict[str, Any], tuple[str, ...], int]:
    """Trace and check the fp32 graph: its record entry, input names and max_length."""
    target = folder / BACKEND_FILES["onnx"]
    with atomic_path(target, suffix=".onnx") as tmp:
        names, max_length = _trace(folder, tmp)
        graph = CrossEncoderGraph(ExportedFile("onnx", tmp, sha256="unrecorded"), names, max_length)
        logits, scores = check_cross_encoder_graph(folder, graph)
    return _file_entry(folder, "onnx", **{LOGIT_CHECK_KEY: logits, SCORE_CHECK_KEY: scores}), names, max_length


def _trace(folder: Path, path: Path) -> tuple[tuple[str, ...], int]:
    """Export the folder's classification model to ``path``: (graph input names, the CrossEncoder's max_length).

    The traced model is dropped on return (the check loads its own, in eval mode: ``torch.onnx.export``
    leaves a module in the training mode it found, recursively).
    """
    model = load_cross_encoder(folder, None)
    check_raw_pairs(model)
    classifier = model.model
    if classifier is None:
        raise ModelFormatError(f"{folder}: the cross-encoder has no Hugging Face model to export")
    _ready_to_trace(classifier, folder)
    max_length = int(model.max_length)
    # the tokenizer call CrossEncoder.predict makes: its output names are the graph's inputs
    features = model.tokenizer(
        [first for first, _ in _TRACE_PAIRS],
        [second for _, second in _TRACE_PAIRS],
        padding=True,
        truncation="longest_first",
        max_length=max_length,
        return_tensors="pt",
    )
    names = tuple(name for name in FEATURES if name in features)
    wrapper = _Logits(classifier.eval(), names).eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings on shape-dependent branches: the check covers them
        torch.onnx.export(
            wrapper,
            tuple(features[name] for name in names),
            str(path),
            input_names=list(names),
            output_names=[LOGITS],
            dynamic_axes={**{name: {0: "batch", 1: "sequence"} for name in names}, LOGITS: {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    return names, max_length


class _Logits(torch.nn.Module):
    """``model(**features).logits``: (batch, seq) int64 per input name -> (batch, 1) float32."""

    def __init__(self, model: torch.nn.Module, names: tuple[str, ...]) -> None:
        super().__init__()
        self.model = model
        self.names = names

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.model(**dict(zip(self.names, inputs, strict=True))).logits
        return logits


def _quantize(folder: Path, fields: tuple[tuple[str, ...], int]) -> dict[str, Any]:
    """The fp32 file quantized (``onnx_export.QUANTIZATION``), checked against torch, then kept: its entry."""
    target = folder / BACKEND_FILES["onnx-int8"]
    with atomic_path(target, suffix=".onnx") as tmp:
        recipe = quantize_int8(folder / BACKEND_FILES["onnx"], tmp)
        graph = CrossEncoderGraph(ExportedFile("onnx-int8", tmp, sha256="unrecorded"), *fields)
        _, scores = check_cross_encoder_graph(folder, graph)
    return _file_entry(folder, "onnx-int8", quantization=recipe, **{SCORE_CHECK_KEY: scores})
