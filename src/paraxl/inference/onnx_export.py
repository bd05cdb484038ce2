"""Export a model folder to ONNX (fp32) and int8 (dynamic quantization), inside the folder.

The files, their record and how they are verified: see ``onnx_files``.

The graph holds the transformer only; pooling and normalisation run in numpy
(``onnx_encoder.pool_hidden_states``), exactly as ``paraxl.modeling.pooling.pool`` does in torch.

Why the legacy TorchScript exporter with eager attention: it exports the unmodified
``backbone(input_ids, attention_mask)`` call (position and token-type ids are built in the
graph exactly as in torch, also for XLM-R's padding-aware positions) in well under a second
per layer, with plain ONNX ops that ONNX Runtime fuses itself. Eager attention gives a smaller
graph than SDPA (no NaN guards) at the same speed.

Every export is checked against torch before it is written, end to end: the folder's
``BiEncoder`` (loaded afresh, as the torch backend loads it) and an ``OnnxEncoder`` on the new graph
each tokenize and encode the probe texts (``export_check.probe_set``) by their own ``tokenize_texts`` +
``encode_tokenized``, the code ``encode`` runs, under every prompt the model has. The probes cover
what the tracing batch did not: a text longer than ``max_seq_length`` (truncation), an empty and a
one-letter text, Chinese, Arabic, Korean and Japanese, and rows of very different lengths in one
padded batch. The token states must agree within 1e-4 (relative to their scale) and the
embeddings - what every user of the file gets - within ``EMBEDDING_TOLERANCE`` = 1e-5 max-abs.
That second bound is what lets evaluation treat fp32 ONNX vectors as torch's (one embedding cache,
the same scores); a graph outside it is refused, and ``paraxl eval --backend auto`` then runs on torch.

A note for anyone comparing torch with ONNX by hand: ``torch.onnx.export`` sets the exported
module back to the training flag it had *recursively*, so exporting a freshly built wrapper
(``training=True``) leaves the whole model in training mode, with dropout active; and
``BiEncoder.encode_tokenized`` restores the module's flag after encoding, so a freshly loaded
``BiEncoder`` (``training=True``, its backbone in eval mode) leaves its backbone in training mode.
Call ``.eval()`` before computing a torch reference.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from paraxl.errors import ModelFormatError
from paraxl.inference.attention_fusion import FusionResult, fuse_attention
from paraxl.inference.export_check import (
    EMBEDDING_TOLERANCE as EMBEDDING_TOLERANCE,  # re-exported: callers compare records with it
)
from paraxl.inference.export_check import check_against_torch
from paraxl.inference.onnx_files import (
    BACKEND_FILES,
    FORMAT_VERSION,
    INPUT_NAMES,
    OUTPUT_NAME,
    ExportedFile,
    locate_export,
    manifest_path,
    read_manifest,
)
from paraxl.io.atomic import atomic_path, write_json_atomic
from paraxl.io.hashing import file_sha256, model_folder_fingerprint
from paraxl.io.locks import folder_lock
from paraxl.modeling.bi_encoder import BiEncoder
from paraxl.modeling.cross_encoder import is_cross_encoder
from paraxl.modeling.model_files import read_json_object

log = logging.getLogger(__name__)

# one name the export calls through, so a test can swap the check (monkeypatch)
_check_against_torch = check_against_torch

OPSET = 17
# A single-file ONNX model is a protobuf, which cannot exceed 2 GiB.
_MAX_SINGLE_FILE_BYTES = 2**31 - 2**26
# Per-channel weights with 7-bit range: on CPUs without VNNI (AVX2 u8s8 kernels saturate int16
# sums of 8-bit products) reduce_range avoids that overflow; per-channel scales keep the
# precision. Measured on multilingual-e5-small (400 mixed-language PAWS-X sentences, AVX2):
# mean cosine to torch 0.9963 (min 0.991) vs 0.9868 (min 0.976) for the per-tensor default, at
# about the same speed. Quantizing the embedding Gathers as well shrinks the file 407 -> 118 MB
# for a 1e-4 change in mean cosine. quant_pre_process (symbolic shape inference + optimisation)
# gave no measurable gain, and ONNX Runtime optimises the graph at load anyway.
QUANTIZATION: dict[str, Any] = {
    "method": "onnxruntime.quantization.quantize_dynamic",
    "weight_type": "QInt8",
    "per_channel": True,
    "reduce_range": True,
    "op_types_to_quantize": ["MatMul", "Gather"],
    "pre_process": False,
    # each layer's attention as one MultiHeadAttention operator before quantizing (attention_fusion)
    "attention_fusion": "MultiHeadAttention",
}
# Texts for tracing (padded, batch 2). The check (``export_check.probe_set``) must see shapes the trace did
# not - other batch sizes and lengths - or a shape-specialised graph would pass unnoticed.
_TRACE_TEXTS = ("paraxl export: a sentence long enough to need padding", "x")
# the manifest key of the fp32 file's embedding check (absent in exports made before it existed)
EMBEDDING_CHECK_KEY = "checked_embedding_max_abs_diff"


@dataclass(frozen=True)
class ExportReport:
    """What ``export_onnx`` did: files written (empty when everything was up to date)."""

    folder: Path
    written: list[Path]
    seconds: float

    @property
    def up_to_date(self) -> bool:
        return not self.written


def export_onnx(folder: Path, int8: bool = True, force: bool = False) -> ExportReport:
    """Write (or bring up to date) the fp32 ONNX file of ``folder`` and, with ``int8``, the int8 one.

    Files already made from the current weights are kept unless ``force``. A new fp32 export
    drops an older int8 file (it was quantized from other weights). Every file is written
    atomically and the record last, so an interrupted export leaves a folder that either
    loads or says it needs exporting. A cross-encoder folder is refused: its graph (logits) and check
    are ``cross_encoder_export.export_cross_encoder``'s (``paraxl export-onnx`` picks the right one).
    """
    if is_cross_encoder(folder):  # BiEncoder.load would read it as a sentence embedder and export that
        raise ModelFormatError(
            f"{folder}: a cross-encoder; export it with paraxl.inference.cross_encoder_export.export_cross_encoder "
            f"(`paraxl export-onnx {folder}` does)"
        )
    start = time.perf_counter()
    with folder_lock(folder, "model folder"):  # a concurrent export would rewrite the same files
        return _export_locked(folder, int8, force, start)


def _export_locked(folder: Path, int8: bool, force: bool, start: float) -> ExportReport:
    """:func:`export_onnx` under the folder's lock (so a waiting second export finds the files current)."""
    fingerprint = model_folder_fingerprint(folder)
    manifest = None if force else _current_manifest(folder, fingerprint)
    written: list[Path] = []
    if manifest is None or not _file_matches(folder, manifest, "onnx"):
        manifest = _new_manifest(fingerprint)
        manifest["files"]["onnx"] = _export_fp32(folder)
        written.append(folder / BACKEND_FILES["onnx"])
        (folder / BACKEND_FILES["onnx-int8"]).unlink(missing_ok=True)
    if int8 and (written or not _file_matches(folder, manifest, "onnx-int8") or not _int8_current(manifest)):
        manifest["files"]["onnx-int8"] = _quantize(folder)
        written.append(folder / BACKEND_FILES["onnx-int8"])
    if written:
        write_json_atomic(manifest_path(folder), manifest, indent=2)
    return ExportReport(folder, written, time.perf_counter() - start)


def ensure_export(folder: Path, backend: str) -> ExportedFile:
    """``locate_export``, exporting first if needed: only for folders paraxl owns (bundled models).

    An fp32 export made before the embedding check existed is checked now (once: the result joins
    its record), so every fp32 file paraxl hands out has passed ``EMBEDDING_TOLERANCE``; an int8 file
    made by an older ``QUANTIZATION`` is made again.
    """
    try:
        located = locate_export(folder, backend)
        if backend == "onnx-int8" and not _int8_current(read_manifest(folder) or {"files": {}}):
            raise ModelFormatError(f"{folder}: its int8 export was made with an older recipe")
    except ModelFormatError as problem:
        log.info("exporting %s to ONNX (%s)", folder, problem)
        export_onnx(folder, int8=backend == "onnx-int8")
        located = locate_export(folder, backend)
    if backend == "onnx" and embedding_check(folder) is None:
        record_embedding_check(folder)
    return located


def embedding_check(folder: Path) -> float | None:
    """The fp32 file's recorded embedding difference to torch (max-abs); None when never checked."""
    try:
        manifest = read_manifest(folder)
    except ModelFormatError:
        return None
    entry = (manifest or {}).get("files", {}).get("onnx")
    value = entry.get(EMBEDDING_CHECK_KEY) if isinstance(entry, dict) else None
    return float(value) if isinstance(value, int | float) else None


def measure_export(folder: Path) -> float:
    """Check ``folder``'s current fp32 file against torch now (the export's check); its embedding difference.

    Raises ModelFormatError when it is outside the bounds; writes nothing.
    """
    exported = locate_export(folder, "onnx")
    _, difference = _check_against_torch(exported.path, folder)
    return difference


def record_embedding_check(folder: Path) -> float:
    """:func:`measure_export` and keep the result in the export's record (a folder paraxl may write)."""
    with folder_lock(folder, "model folder"):
        recorded = embedding_check(folder)
        if recorded is not None:  # another process checked it while this one waited
            return recorded
        difference = measure_export(folder)
        manifest = read_manifest(folder)
        assert manifest is not None  # measure_export located the export through it
        manifest["files"]["onnx"][EMBEDDING_CHECK_KEY] = difference
        write_json_atomic(manifest_path(folder), manifest, indent=2)
    return difference


# ---------------------------------------------------------------- manifest helpers
def _current_manifest(folder: Path, fingerprint: str) -> dict[str, Any] | None:
    """The record if it describes the current weights and this format; else None (re-export)."""
    try:
        manifest = read_manifest(folder)
    except ModelFormatError:
        return None
    if manifest is None or manifest.get("format_version") != FORMAT_VERSION:
        return None
    return manifest if manifest.get("source_fingerprint") == fingerprint else None


def _file_matches(folder: Path, manifest: dict[str, Any], backend: str) -> bool:
    entry = manifest["files"].get(backend)
    path = folder / BACKEND_FILES[backend]
    return isinstance(entry, dict) and path.is_file() and file_sha256(path) == entry.get("sha256")


def _int8_current(manifest: dict[str, Any]) -> bool:
    """Whether the int8 file's record says it was made with today's ``QUANTIZATION`` (else re-quantize)."""
    entry = manifest["files"].get("onnx-int8")
    made_with = entry.get("quantization") if isinstance(entry, dict) else None
    return isinstance(made_with, dict) and all(made_with.get(key) == value for key, value in QUANTIZATION.items())


def _new_manifest(fingerprint: str) -> dict[str, Any]:
    import onnxruntime
    import transformers

    from paraxl.version import __version__

    return {
        "format_version": FORMAT_VERSION,
        "paraxl_version": __version__,
        "source_fingerprint": fingerprint,
        "opset": OPSET,
        "exporter": {
            "tool": "torch.onnx.export (TorchScript, dynamo=False)",
            "attention": "eager",
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "onnxruntime": onnxruntime.__version__,
        },
        "inputs": list(INPUT_NAMES),
        "output": OUTPUT_NAME,
        "dynamic_axes": {"batch": 0, "sequence": 1},
        "files": {},
    }


def _file_entry(folder: Path, backend: str, **extra: Any) -> dict[str, Any]:
    path = folder / BACKEND_FILES[backend]
    return {"path": BACKEND_FILES[backend], "sha256": file_sha256(path), "bytes": path.stat().st_size, **extra}


# ---------------------------------------------------------------- fp32 export
def _export_fp32(folder: Path) -> dict[str, Any]:
    target = folder / BACKEND_FILES["onnx"]
    with atomic_path(target, suffix=".onnx") as tmp:
        _trace(folder, tmp)
        hidden, embedding = _check_against_torch(tmp, folder)
    return _file_entry(folder, "onnx", checked_max_abs_diff=hidden, **{EMBEDDING_CHECK_KEY: embedding})


def _ready_to_trace(model: torch.nn.Module, folder: Path) -> None:
    """Refuse weights too large for one ONNX file (protobuf's 2 GiB), and switch a Hugging Face model to
    eager attention (why: the module docstring); shared by the bi-encoder and cross-encoder exports."""
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    if size > _MAX_SINGLE_FILE_BYTES:
        raise ModelFormatError(
            f"{folder}: {size / 2**30:.1f} GiB of weights is too large for a single-file ONNX export"
        )
    set_attention = getattr(model, "set_attn_implementation", None)
    if callable(set_attention):
        set_attention("eager")


def _trace(folder: Path, path: Path) -> None:
    """Export ``folder``'s backbone to ``path``; the traced model is dropped on return (the check loads its own)."""
    encoder = BiEncoder.load(folder)
    backbone = encoder.backbone.eval()
    _ready_to_trace(backbone, folder)
    wrapper = _Backbone(backbone).eval()
    trace = encoder.tokenize(list(_TRACE_TEXTS), prompt_name="")  # padded to the longer text
    with torch.no_grad(), warnings.catch_warnings():
        # tracer warnings (Python bools of shapes in transformers' mask code, aten::index) are
        # about shape-dependent branches; the check runs the graph on other shapes.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            (trace["input_ids"], trace["attention_mask"]),
            str(path),
            input_names=list(INPUT_NAMES),
            output_names=[OUTPUT_NAME],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "sequence"},
                "attention_mask": {0: "batch", 1: "sequence"},
                OUTPUT_NAME: {0: "batch", 1: "sequence"},
            },
            opset_version=OPSET,
            dynamo=False,
        )


class _Backbone(torch.nn.Module):
    """``backbone(input_ids, attention_mask).last_hidden_state``, the call ``BiEncoder.forward`` makes."""

    def __init__(self, backbone: torch.nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        # (batch, seq) x2 -> (batch, seq, hidden)
        hidden: torch.Tensor = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return hidden


# ---------------------------------------------------------------- int8
def quantize_int8(source: Path, target: Path) -> dict[str, Any]:
    """``source`` (an fp32 graph in a model folder's ``onnx/``) quantized with this project's settings
    (``QUANTIZATION``) into ``target``, its attention fused first where the graph allows
    (``attention_fusion``); the record of how (``QUANTIZATION`` plus the fusion's result).
    onnxruntime's root-logger chatter is kept out of the caller's logs."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    heads, hidden = _attention_shape(source.parent.parent / "config.json")
    with tempfile.TemporaryDirectory(prefix=".fusion-", dir=target.parent) as scratch:
        fused_path = Path(scratch) / "fused.onnx"
        fusion = fuse_attention(source, fused_path, heads, hidden) if heads else FusionResult(0, None)
        with _root_logging_contained():
            quantize_dynamic(
                fused_path if fusion.fused else source,
                target,
                weight_type=QuantType.QInt8,
                per_channel=QUANTIZATION["per_channel"],
                reduce_range=QUANTIZATION["reduce_range"],
                op_types_to_quantize=list(QUANTIZATION["op_types_to_quantize"]),
                # the fused operator's outputs carry no type for the quantizer's shape inference
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
    return {**QUANTIZATION, **fusion.record()}


def _attention_shape(config_path: Path) -> tuple[int, int]:
    """(attention heads, hidden size) from a Hugging Face config; (0, 0) where it does not say (no fusion)."""
    try:
        config = read_json_object(config_path)
        return int(config["num_attention_heads"]), int(config["hidden_size"])
    except (ModelFormatError, ValueError, KeyError, TypeError):
        return 0, 0


def _quantize(folder: Path) -> dict[str, Any]:
    target = folder / BACKEND_FILES["onnx-int8"]
    with atomic_path(target, suffix=".onnx") as tmp:
        recipe = quantize_int8(folder / BACKEND_FILES["onnx"], tmp)
    return _file_entry(folder, "onnx-int8", quantization=recipe)


@contextlib.contextmanager
def _root_logging_contained() -> Iterator[None]:
    """quantize_dynamic calls ``logging.warning`` (a pre-processing hint), which configures the
    root logger if nothing has; a temporary NullHandler keeps the process's logging untouched."""
    root = logging.getLogger()
    if root.handlers:
        yield
        return
    handler = logging.NullHandler()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
