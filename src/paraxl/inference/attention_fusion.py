"""Fuse each layer's attention into one ``MultiHeadAttention`` operator before int8 quantization.

Why: dynamic quantization turns the projections into int8 GEMMs that run near the CPU's int8 peak,
so what is left in fp32 decides the speed. The exported graph computes attention as 4 Transposes,
2 MatMuls, a Softmax and the mask arithmetic per layer; ONNX Runtime's ``MultiHeadAttention`` kernel
does the same in one operator. Measured on multilingual-e5-small (2 AVX-512 cores, PAWS-X batches of
32): the attention part of an int8 pass 36 -> 30 ms, and with the session setting in ``onnx_files``
(no SkipLayerNormalization) the int8 pass 184 -> 148 ms. RESULTS.md has the benchmark.

Only attention is fused (``onnxruntime.transformers.optimizer`` with every other fusion off): the
Q, K and V projections stay separate MatMuls, so ``quantize_dynamic`` still turns them into int8
GEMMs (the fused ``Attention`` operator would become ``QAttention``, measured slower), and
LayerNorm/GELU stay as ONNX Runtime fuses them at load.

The fusion rewrites fp32 arithmetic into the same arithmetic, so the fused graph must give the
unfused graph's token states (checked here on random token batches, ``FUSION_TOLERANCE``); a graph
the optimizer cannot fuse, or fuses into something else, is quantized unfused, as before.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from paraxl.inference.onnx_files import open_session

log = logging.getLogger(__name__)

FUSED_OPERATOR = "MultiHeadAttention"
# max |difference| of token states between the fused and unfused fp32 graphs (their scale is ~1-10;
# the fused kernel sums in another order, measured ~1e-6)
FUSION_TOLERANCE = 1e-4
# (rows, tokens) of the random batches the check runs: another batch size and length than each
# other, and padding in every batch (the mask is what the fusion rewires)
_CHECK_SHAPES = ((3, 17), (2, 40))


@dataclass(frozen=True)
class FusionResult:
    """What :func:`fuse_attention` did: how many attention blocks it fused and the check's difference."""

    fused: int
    max_abs_diff: float | None

    def record(self) -> dict[str, Any]:
        return {"fused_attention": self.fused, "fusion_max_abs_diff": self.max_abs_diff}


def fuse_attention(source: Path, target: Path, num_heads: int, hidden_size: int) -> FusionResult:
    """Write ``source`` with its attention fused to ``target`` and check it; ``fused == 0`` (and no
    ``target``) when nothing was fused or the check failed, so the caller quantizes ``source``."""
    from onnxruntime.transformers import optimizer
    from onnxruntime.transformers.fusion_options import AttentionOpType, FusionOptions

    options = FusionOptions("bert")
    for name in (
        "enable_gelu",
        "enable_layer_norm",
        "enable_skip_layer_norm",
        "enable_bias_skip_layer_norm",
        "enable_embed_layer_norm",
        "enable_bias_gelu",
        "enable_rotary_embeddings",
        "enable_qordered_matmul",
    ):
        setattr(options, name, False)
    options.use_multi_head_attention = True
    options.attention_op_type = AttentionOpType.MultiHeadAttention
    with _optimizer_logging_quiet():
        model = optimizer.optimize_model(
            str(source),
            model_type="bert",
            num_heads=num_heads,
            hidden_size=hidden_size,
            optimization_options=options,
            opt_level=0,  # the graph fusions only; ONNX Runtime applies its own at load
        )
        fused = int(model.get_fused_operator_statistics().get(FUSED_OPERATOR, 0))
        if fused == 0:
            return FusionResult(0, None)
        model.save_model_to_file(str(target))
    difference = _max_abs_diff(source, target)
    if difference > FUSION_TOLERANCE:
        log.warning(
            "attention fusion changed %s's token states by %.1e (> %.0e): quantizing the unfused graph",
            source,
            difference,
            FUSION_TOLERANCE,
        )
        target.unlink(missing_ok=True)
        return FusionResult(0, difference)
    return FusionResult(fused, difference)


def _max_abs_diff(first: Path, second: Path) -> float:
    """Largest |difference| of the two graphs' outputs on random padded batches (padded token states excluded).

    Inputs by name: ``input_ids`` random ids, ``attention_mask`` with one row padded to half length,
    anything else (a cross-encoder's ``token_type_ids``) zeros.
    """
    rng = np.random.default_rng(0)
    sessions = [open_session(path) for path in (first, second)]
    vocabulary = _vocabulary_size(first)
    worst = 0.0
    for rows, tokens in _CHECK_SHAPES:
        attention_mask = np.ones((rows, tokens), dtype=np.int64)
        attention_mask[0, tokens // 2 :] = 0
        feeds = {}
        for node in sessions[0].get_inputs():
            if node.name == "input_ids":
                feeds[node.name] = rng.integers(5, vocabulary, size=(rows, tokens), dtype=np.int64)
            elif node.name == "attention_mask":
                feeds[node.name] = attention_mask
            else:
                feeds[node.name] = np.zeros((rows, tokens), dtype=np.int64)
        first_out, second_out = (np.asarray(session.run(None, feeds)[0]) for session in sessions)
        if first_out.ndim == 3:  # (rows, tokens, hidden): padded positions' states are never used
            real = attention_mask.astype(bool)
            first_out, second_out = first_out[real], second_out[real]
        worst = max(worst, float(np.abs(first_out - second_out).max()))
    return worst


def _vocabulary_size(path: Path) -> int:
    """Token ids the check may draw: rows of the table the graph gathers ``input_ids`` from (100 if not found)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    tables = {init.name: int(init.dims[0]) for init in model.graph.initializer if len(init.dims) == 2}
    for node in model.graph.node:
        if node.op_type == "Gather" and len(node.input) == 2 and node.input[1] == "input_ids":
            return tables.get(node.input[0], 100)
    return 100


@contextlib.contextmanager
def _optimizer_logging_quiet() -> Iterator[None]:
    """The optimizer logs every fusion at INFO/WARNING on its own loggers; keep them out of the user's."""
    names = ("onnxruntime.transformers", "fusion_base", "onnx_model", "onnx_model_bert", "fusion_utils")
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
