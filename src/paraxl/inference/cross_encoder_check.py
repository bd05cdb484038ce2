"""The check a cross-encoder's ONNX graph passes before it is written: its scores against torch's.

The folder's torch ``CrossEncoder`` (loaded afresh by :func:`~paraxl.modeling.cross_encoder.load_cross_encoder`,
as the torch backend loads it) and an :class:`~paraxl.inference.cross_encoder_onnx.OnnxCrossEncoderScorer`
on the new graph each score the probe pairs (:func:`probe_pairs`) their own way, in batches of
``_BATCH_SIZE`` pairs. The probes cover what the export's tracing batch did not: pairs longer than
``max_length`` (truncation of the first, the second and both sentences), an empty sentence, a one-letter
one, Chinese, Arabic, Korean and Japanese, and batches of very different lengths (padding).

Bounds (max-abs over the probes):

* fp32: sigmoid scores within ``SCORE_TOLERANCE`` = 1e-5 (what lets ``paraxl eval --backend auto`` treat
  fp32 ONNX scores as torch's) and logits within ``LOGIT_TOLERANCE`` relative to their scale (a logit
  error hides in a saturated sigmoid);
* int8: dynamic quantization moves scores by a few hundredths, so its bound ``INT8_SCORE_BOUND`` = 0.25
  is no accuracy claim; it refuses a graph that does not compute the model (a wrong input, a broken
  quantization). What int8 costs in accuracy is measured by ``benchmarks/bench_cross_encoder_onnx.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from paraxl.errors import ModelFormatError
from paraxl.inference.cross_encoder_onnx import CrossEncoderGraph, OnnxCrossEncoderScorer, sigmoid
from paraxl.inference.export_check import PROBE_TEXTS, probe_texts
from paraxl.modeling.cross_encoder import load_cross_encoder

SCORE_TOLERANCE = 1e-5
LOGIT_TOLERANCE = 1e-4  # relative to max(1, the largest |logit|)
INT8_SCORE_BOUND = 0.25
# an fp32 export this close to the bounds computes the model (rounding), farther it does not (refusal())
NEAR_FACTOR = 10.0
# Three pairs per forward pass: sorted longest first, the truncated pairs share a batch with shorter
# ones, so padding is exercised on both sides of the comparison.
_BATCH_SIZE = 3


def probe_pairs(max_length: int) -> list[tuple[str, str]]:
    """Pairs that need truncation (either side, both), then neighbours of ``PROBE_TEXTS`` paired up
    (each script with the next; the empty text with the one-letter one) and a translation pair."""
    long_text = probe_texts(max_length)[0]  # more than max_length tokens in any vocabulary
    texts = list(PROBE_TEXTS)
    pairs = [(long_text, "x"), ("the cat sat on the mat", long_text), (long_text, long_text)]
    pairs += list(zip(texts, texts[1:] + texts[:1], strict=True))
    pairs.append(("Das Museum öffnet um neun Uhr morgens.", "The museum opens at nine in the morning."))
    return pairs


def torch_logits(folder: Path, pairs: list[tuple[str, str]]) -> npt.NDArray[np.float32]:
    """(n,) float32 logits of the folder's torch ``CrossEncoder`` (``predict`` without its sigmoid)."""
    import torch

    reference = load_cross_encoder(folder, None)
    logits = reference.predict(
        pairs, batch_size=_BATCH_SIZE, activation_fn=torch.nn.Identity(), show_progress_bar=False, convert_to_numpy=True
    )
    return np.asarray(logits, dtype=np.float32).reshape(-1)


def check_cross_encoder_graph(folder: Path, graph: CrossEncoderGraph) -> tuple[float, float]:
    """Max abs differences of ``graph`` against torch on :func:`probe_pairs`: (logits, sigmoid scores).

    The torch scores are ``torch.sigmoid`` of ``predict``'s logits, which is what ``predict`` with its
    sigmoid returns. Raises ModelFormatError outside the bound of the graph's backend (module docstring).
    """
    import torch

    pairs = probe_pairs(graph.max_length)
    expected = torch_logits(folder, pairs)  # (n,)
    expected_scores = torch.sigmoid(torch.from_numpy(expected)).numpy().astype(np.float64)
    got = OnnxCrossEncoderScorer.open(folder, graph, _BATCH_SIZE).logits(pairs)  # (n,)
    logit_difference = float(np.abs(got - expected).max())
    score_difference = float(np.abs(sigmoid(got) - expected_scores).max())
    scale = max(1.0, float(np.abs(expected).max()))
    if graph.exported.backend == "onnx-int8":
        within = score_difference <= INT8_SCORE_BOUND
    else:
        within = score_difference <= SCORE_TOLERANCE and logit_difference <= LOGIT_TOLERANCE * scale
    if not within:  # a NaN fails every comparison, so it is refused too
        raise ModelFormatError(refusal(folder, graph.exported.backend, score_difference, logit_difference, scale))
    return logit_difference, score_difference


def refusal(folder: Path, backend: str, score_difference: float, logit_difference: float, scale: float) -> str:
    """Why an export outside its bound is refused: the measured differences, the tolerances, and the cause.

    An fp32 graph within ``NEAR_FACTOR`` times both tolerances most likely computes the model, a little less
    exactly than the bound asks (kernels of another ONNX Runtime build or CPU round differently); farther,
    or NaN, it does not compute the model: the architecture is what the ONNX backend does not support.
    """
    measured = f"max abs difference {score_difference:.3g} in the scores, {logit_difference:.3g} in the logits"
    if backend == "onnx-int8":
        return (
            f"{folder}: the onnx-int8 cross-encoder export does not reproduce torch ({measured}; the int8 bound "
            f"is {INT8_SCORE_BOUND:g} on scores): the quantized graph does not compute this model"
        )
    tolerance = f"the tolerance is {SCORE_TOLERANCE:g} on scores, {LOGIT_TOLERANCE * scale:.3g} on logits"
    near = (
        score_difference <= NEAR_FACTOR * SCORE_TOLERANCE and logit_difference <= NEAR_FACTOR * LOGIT_TOLERANCE * scale
    )
    cause = (
        f"a numerical difference just above the tolerance (within {NEAR_FACTOR:g}x; likely rounding of this ONNX "
        "Runtime build, not an unsupported architecture), refused because --backend auto treats fp32 ONNX scores "
        "as torch's; score this model with --backend torch"
        if near  # False for NaN
        else "this architecture is not supported by the ONNX backend"
    )
    return f"{folder}: the {backend} cross-encoder export does not reproduce torch ({measured}; {tolerance}): {cause}"
