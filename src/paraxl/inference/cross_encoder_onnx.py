"""``OnnxCrossEncoderScorer``: a cross-encoder folder's ONNX export on ONNX Runtime, behind ``PairScorer``.

The files are the bi-encoder's (``onnx_files``: ``MODEL/onnx/model.onnx``, ``model_qint8.onnx`` and the
record ``paraxl_onnx.json``, fingerprinted and verified the same way); the record says
``"kind": "cross-encoder"`` and holds what scoring needs besides the graph:

    inputs      input_ids, attention_mask (+ token_type_ids where the tokenizer makes them), (batch, seq) int64
    output      logits (batch, 1) float32: the classification head's one output; the sigmoid runs here
    max_length  the torch ``CrossEncoder``'s ``max_length`` when the export was checked against it

Scoring repeats ``sentence_transformers.CrossEncoder.predict``: pairs sorted by character length (longest
first), ``batch_size`` per forward pass, each batch tokenized by one
``tokenizer(firsts, seconds, padding=True, truncation="longest_first", max_length=max_length)`` call, then
the sigmoid of the logit. So ``score`` is :class:`~paraxl.modeling.cross_encoder.CrossEncoderScorer`'s
score up to the export's checked difference (``cross_encoder_check``).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from paraxl.errors import InputError, ModelFormatError
from paraxl.inference.onnx_files import ExportedFile, locate_export, manifest_path, open_session, read_manifest
from paraxl.modeling.cross_encoder import PREDICT_BATCH, is_cross_encoder
from paraxl.modeling.model_files import loading
from paraxl.modeling.tokenizer_files import load_tokenizer

if TYPE_CHECKING:
    import onnxruntime
    from transformers import PreTrainedTokenizerBase

CROSS_ENCODER_KIND = "cross-encoder"  # the record's "kind" (a bi-encoder's record has none)
LOGITS = "logits"
# graph inputs in the order they are fed; token_type_ids only where the tokenizer returns them
FEATURES = ("input_ids", "attention_mask", "token_type_ids")
# the fp32 file's recorded differences to torch on the check's probe pairs (cross_encoder_check)
SCORE_CHECK_KEY = "checked_score_max_abs_diff"
LOGIT_CHECK_KEY = "checked_logit_max_abs_diff"


@dataclass(frozen=True)
class CrossEncoderGraph:
    """One exported cross-encoder graph and what its record says about feeding it."""

    exported: ExportedFile
    input_names: tuple[str, ...]
    max_length: int


def locate_cross_encoder_export(folder: Path, backend: str) -> CrossEncoderGraph:
    """The verified export of ``backend`` ("onnx" / "onnx-int8") of the cross-encoder in ``folder``.

    ModelFormatError, saying what to run, when ``folder`` holds no cross-encoder, when its export is
    missing, stale or tampered with (``locate_export``), or when the export is a bi-encoder's.
    """
    if not is_cross_encoder(folder):
        raise ModelFormatError(
            f"{folder}: not a cross-encoder (a sentence embedder: no sequence-classification head); "
            "load it as a bi-encoder"
        )
    exported = locate_export(folder, backend)
    manifest = read_manifest(folder)
    assert manifest is not None  # locate_export found the file through it
    if manifest.get("kind") != CROSS_ENCODER_KIND:
        raise ModelFormatError(
            f"{manifest_path(folder)}: a bi-encoder's ONNX export of a cross-encoder folder; "
            f"re-run `paraxl export-onnx {folder} --force`"
        )
    return CrossEncoderGraph(exported, *graph_fields(manifest, folder))


def graph_fields(manifest: dict[str, Any], folder: Path) -> tuple[tuple[str, ...], int]:
    """(input names, max_length) of a cross-encoder record; ModelFormatError when they are malformed."""
    names, max_length = manifest.get("inputs"), manifest.get("max_length")
    if (
        not isinstance(names, list)
        or not {"input_ids", "attention_mask"} <= set(names) <= set(FEATURES)
        or not isinstance(max_length, int)
        or max_length < 2
    ):
        raise ModelFormatError(
            f"{manifest_path(folder)}: malformed cross-encoder record (inputs {names!r}, max_length {max_length!r}); "
            f"re-run `paraxl export-onnx {folder} --force`"
        )
    return tuple(names), max_length


def checked_export(folder: Path, bound: float) -> float | None:
    """The fp32 export's recorded score difference to torch when the export is current and within
    ``bound``; None otherwise (no export, stale, a bi-encoder's, or never checked)."""
    try:
        locate_cross_encoder_export(folder, "onnx")
        manifest = read_manifest(folder)
    except ModelFormatError:
        return None
    value = (manifest or {}).get("files", {}).get("onnx", {}).get(SCORE_CHECK_KEY)
    return float(value) if isinstance(value, int | float) and value <= bound else None


def sigmoid(logits: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """(n,) float64 ``1 / (1 + exp(-logit))``, computed in float64 (torch's float32 sigmoid is within 6e-8)."""
    result: npt.NDArray[np.float64] = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    return result


class OnnxCrossEncoderScorer:
    """A :class:`~paraxl.decision.scorers.PairScorer` on a cross-encoder's ONNX export: sigmoid scores.

    ``fingerprint`` = the graph's ``ExportedFile.encoder_fingerprint`` (weights, backend, graph sha256).
    ``score`` may be called from several threads: ONNX Runtime's ``run`` is thread-safe, and the
    tokenizer (whose Rust state each call sets) is called under a lock.
    """

    def __init__(
        self,
        session: onnxruntime.InferenceSession,
        tokenizer: PreTrainedTokenizerBase,
        graph: CrossEncoderGraph,
        fingerprint: str,
        batch_size: int = PREDICT_BATCH,
    ) -> None:
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        self.session = session
        self.tokenizer = tokenizer
        self.graph = graph
        self.backend = graph.exported.backend
        self.fingerprint = fingerprint
        self.batch_size = batch_size
        self._tokenizer_lock = threading.Lock()

    @classmethod
    def load(cls, folder: str | Path, backend: str = "onnx", batch_size: int = PREDICT_BATCH) -> OnnxCrossEncoderScorer:
        """Open ``folder``'s verified export for ``backend`` (:func:`locate_cross_encoder_export`)."""
        folder = Path(folder)
        return cls.open(folder, locate_cross_encoder_export(folder, backend), batch_size)

    @classmethod
    def open(cls, folder: Path, graph: CrossEncoderGraph, batch_size: int = PREDICT_BATCH) -> OnnxCrossEncoderScorer:
        """``folder``'s tokenizer around ``graph``, taken as given: the export's check opens a new graph
        this way before the graph has a record."""
        path = graph.exported.path
        tokenizer = load_tokenizer(folder)
        with loading(path, "ONNX graph"):  # onnxruntime's errors share no public base class
            session = open_session(path)
        names = [node.name for node in session.get_inputs()]
        outputs = [node.name for node in session.get_outputs()]
        if sorted(names) != sorted(graph.input_names) or outputs != [LOGITS]:
            raise ModelFormatError(
                f"{path}: inputs {names} and outputs {outputs}, expected {list(graph.input_names)} and [{LOGITS!r}]"
            )
        return cls(session, tokenizer, graph, graph.exported.encoder_fingerprint(folder), batch_size)

    @property
    def max_length(self) -> int:
        """Tokens per pair (both texts, truncated longest first), as the export was checked with."""
        return self.graph.max_length

    def logits(self, pairs: Sequence[tuple[str, str]]) -> npt.NDArray[np.float32]:
        """(n,) float32 logits, in input order (batches as ``CrossEncoder.predict`` forms them)."""
        _check_pairs(pairs)
        lengths = np.array([len(first) + len(second) for first, second in pairs], dtype=np.int64)
        order = np.argsort(-lengths, kind="stable")  # longest first: little padding per batch
        logits = np.zeros(len(pairs), dtype=np.float32)
        for start in range(0, len(pairs), self.batch_size):
            rows = order[start : start + self.batch_size]
            with self._tokenizer_lock:
                features = self.tokenizer(
                    [pairs[row][0] for row in rows],
                    [pairs[row][1] for row in rows],
                    padding=True,
                    truncation="longest_first",
                    max_length=self.graph.max_length,
                    return_tensors="np",
                )
            feeds = {name: np.asarray(features[name], dtype=np.int64) for name in self.graph.input_names}
            logits[rows] = self.session.run([LOGITS], feeds)[0].reshape(-1)  # (batch, 1) -> (batch,)
        return logits

    def score(self, pairs: Sequence[tuple[str, str]]) -> npt.NDArray[np.float64]:
        """(n,) float64 sigmoid scores, in input order."""
        return sigmoid(self.logits(pairs))


def _check_pairs(pairs: Sequence[tuple[str, str]]) -> None:
    """InputError naming the first pair that is not two strings."""
    for index, pair in enumerate(pairs):
        if not (isinstance(pair, tuple | list) and len(pair) == 2 and all(isinstance(side, str) for side in pair)):
            raise InputError(f"pair {index} is not two strings: {pair!r}"[:200])
