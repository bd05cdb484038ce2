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
each tokenize and encode the probe texts (``probe_set``) by their own ``tokenize_texts`` +
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
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import cycle, islice
from pathlib import Path
from typing import Any

import numpy as np
import torch

from paraxl.errors import ModelFormatError
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
from paraxl.modeling.st_layout import EncoderSettings

log = logging.getLogger(__name__)

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
}
# Texts for tracing (padded, batch 2). The check (``probe_set``) must see shapes the trace did
# not - other batch sizes and lengths - or a shape-specialised graph would pass unnoticed.
_TRACE_TEXTS = ("paraxl export: a sentence long enough to need padding", "x")
# The probes besides the long one: very short, and scripts a Latin-only check would miss.
PROBE_TEXTS = (
    "",  # the prompt and special tokens only
    "x",
    "the cat sat on the mat",
    "Das Museum öffnet um neun Uhr morgens.",
    "博物馆每天早上九点开门，周一闭馆。",  # zh
    "يفتح المتحف أبوابه في الساعة التاسعة صباحًا.",  # ar
    "박물관은 매일 오전 아홉 시에 문을 엽니다.",  # ko
    "博物館は朝九時に開館します。",  # ja
)
# Words of the long probe: each whitespace-separated word is at least one token in any subword
# vocabulary, so ``max_seq_length + 16`` of them are always truncated.
_LONG_WORDS = (
    *("the", "museum", "opens", "at", "nine"),
    *("博物馆", "开门", "المتحف", "يفتح", "박물관은", "엽니다", "Museum", "öffnet"),
)
# Max-abs difference allowed between torch's and the fp32 graph's pooled (normalised) embeddings
# on the probes. Measured on multilingual-e5-small: 1.2e-7 on 350 PAWS-X sentences, so the bound
# has two orders of magnitude of room and still sits below the 4th decimal of any cosine.
EMBEDDING_TOLERANCE = 1e-5
# token states: max-abs difference on real (non-padding) tokens, relative to their largest magnitude
_HIDDEN_TOLERANCE = 1e-4
# Rows per forward pass in the check. Two put the truncated long probe and a short one in one padded
# batch (the planner sorts longest first) at half the cost of encode's default 32 rows, whose budget
# would pad 3 short rows to max_seq_length (multilingual-e5-small: ~2 s per backend on a loaded 2-core CPU).
_BATCH_SIZE = 2
# (prompt name, texts) pairs the check encodes; a prompt name as ``encode`` takes it (None: the default)
Probes = Sequence[tuple[str | None, Sequence[str]]]
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
    loads or says it needs exporting.
    """
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
    if int8 and (written or not _file_matches(folder, manifest, "onnx-int8")):
        manifest["files"]["onnx-int8"] = _quantize(folder)
        written.append(folder / BACKEND_FILES["onnx-int8"])
    if written:
        write_json_atomic(manifest_path(folder), manifest, indent=2)
    return ExportReport(folder, written, time.perf_counter() - start)


def ensure_export(folder: Path, backend: str) -> ExportedFile:
    """``locate_export``, exporting first if needed: only for folders paraxl owns (bundled models).

    An fp32 export made before the embedding check existed is checked now (once: the result joins
    its record), so every fp32 file paraxl hands out has passed ``EMBEDDING_TOLERANCE``.
    """
    try:
        located = locate_export(folder, backend)
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


def _trace(folder: Path, path: Path) -> None:
    """Export ``folder``'s backbone to ``path``; the traced model is dropped on return (the check loads its own)."""
    encoder = BiEncoder.load(folder)
    backbone = encoder.backbone.eval()
    size = sum(p.numel() * p.element_size() for p in backbone.parameters())
    if size > _MAX_SINGLE_FILE_BYTES:
        raise ModelFormatError(
            f"{folder}: {size / 2**30:.1f} GiB of weights is too large for a single-file ONNX export"
        )
    if hasattr(backbone, "set_attn_implementation"):
        backbone.set_attn_implementation("eager")
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


# ---------------------------------------------------------------- the check against torch
def probe_set(settings: EncoderSettings) -> list[tuple[str | None, tuple[str, ...]]]:
    """What the export's check encodes: :func:`probe_texts` under the model's default prompt (what
    ``encode`` applies when a caller names none), then ``PROBE_TEXTS`` under no prompt and each named
    one whose prefix differs from those before (the long probe once: it costs the most to encode)."""
    chosen: dict[str, str | None] = {settings.prompt_prefix(None): None}
    for name in ("", *sorted(settings.prompts)):
        chosen.setdefault(settings.prompt_prefix(name), name)
    others = [(name, PROBE_TEXTS) for name in list(chosen.values())[1:]]
    return [(None, probe_texts(settings.max_seq_length)), *others]


def probe_texts(max_seq_length: int) -> tuple[str, ...]:
    """A text longer than ``max_seq_length`` tokens in any vocabulary, then ``PROBE_TEXTS``: one call
    of ``encode`` pads a short one to the truncated long one (rows of very different lengths)."""
    long_text = " ".join(islice(cycle(_LONG_WORDS), max_seq_length + 16))
    return (long_text, *PROBE_TEXTS)


def _check_against_torch(graph: Path, folder: Path, probes: Probes | None = None) -> tuple[float, float]:
    """Max abs differences of the graph at ``graph`` vs torch on ``probes``: token states, embeddings.

    The embeddings are each backend's own ``tokenize_texts`` + ``encode_tokenized`` (``folder``'s
    ``BiEncoder`` and an ``OnnxEncoder`` on ``graph``), so the second number is the difference a
    user of the file gets. The token states are torch's from those same forward passes, against
    the graph run on the same padded batches. ``probes`` defaults to :func:`probe_set` of the
    model's settings. Raises ModelFormatError when either is outside its bound (module docstring).
    """
    from paraxl.inference.onnx_encoder import OnnxEncoder

    reference = BiEncoder.load(folder).eval()  # eval: see the module docstring's note
    # the sha256 names the graph in the encoder's fingerprint only, which this throwaway encoder never shows
    exported = OnnxEncoder.open(folder, ExportedFile("onnx", graph, sha256="unrecorded"))
    batches: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    hidden = embedding = 0.0
    scale = 1.0
    with _recording_token_states(reference, batches):
        for prompt_name, texts in probe_set(reference.settings) if probes is None else probes:
            expected = reference.encode_tokenized(reference.tokenize_texts(texts, prompt_name), _BATCH_SIZE)
            got = exported.encode_tokenized(exported.tokenize_texts(texts, prompt_name), _BATCH_SIZE)  # (n, dim)
            embedding = max(embedding, float(np.abs(got - expected).max(initial=0.0)))
    for input_ids, attention_mask, states in batches:  # (batch, seq) x2, (batch, seq, hidden)
        feeds = {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy()}
        got_states = exported.session.run([OUTPUT_NAME], feeds)[0]
        real = feeds["attention_mask"].astype(bool)  # padding positions may differ and are pooled away
        hidden = max(hidden, float(np.abs(got_states - states.numpy())[real].max()))
        scale = max(scale, float(np.abs(states.numpy()[real]).max()))
    if not (hidden <= _HIDDEN_TOLERANCE * scale and embedding <= EMBEDDING_TOLERANCE):
        raise ModelFormatError(
            f"{folder}: the ONNX export does not reproduce torch (max abs difference {hidden:.3g} in the token "
            f"states, {embedding:.3g} in the embeddings; the bound is {EMBEDDING_TOLERANCE:g}); "
            "this architecture is not supported by the ONNX backend"
        )
    return hidden, embedding


@contextlib.contextmanager
def _recording_token_states(
    encoder: BiEncoder, batches: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
) -> Iterator[None]:
    """Append (input_ids, attention_mask, last_hidden_state) of every backbone call to ``batches``:
    the token states of ``encode``'s own forward passes, without running torch a second time."""

    def record(module: torch.nn.Module, args: Any, kwargs: dict[str, Any], output: Any) -> None:
        batches.append((kwargs["input_ids"].cpu(), kwargs["attention_mask"].cpu(), output.last_hidden_state.cpu()))

    handle = encoder.backbone.register_forward_hook(record, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


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
def _quantize(folder: Path) -> dict[str, Any]:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source = folder / BACKEND_FILES["onnx"]
    target = folder / BACKEND_FILES["onnx-int8"]
    with atomic_path(target, suffix=".onnx") as tmp, _root_logging_contained():
        quantize_dynamic(
            source,
            tmp,
            weight_type=QuantType.QInt8,
            per_channel=QUANTIZATION["per_channel"],
            reduce_range=QUANTIZATION["reduce_range"],
            op_types_to_quantize=list(QUANTIZATION["op_types_to_quantize"]),
        )
    return _file_entry(folder, "onnx-int8", quantization=dict(QUANTIZATION))


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
