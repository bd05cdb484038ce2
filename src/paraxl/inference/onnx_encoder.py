"""``OnnxEncoder``: a model folder's ONNX export on ONNX Runtime, behind ``SentenceEncoder``.

The graph computes the transformer's token states; pooling and L2 normalisation follow the
folder's sentence-transformers settings here in numpy (see ``onnx_files`` for the layout).
Encoding matches ``BiEncoder.encode``: prompt prefix, truncation to ``max_seq_length``,
length-sorted batches (little padding), input order restored.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime
from transformers import PreTrainedTokenizerBase

from paraxl.errors import ModelFormatError
from paraxl.inference.onnx_files import INPUT_NAMES, OUTPUT_NAME, locate_export, session_options
from paraxl.io.hashing import model_folder_fingerprint
from paraxl.modeling.model_files import loading, read_json_object
from paraxl.modeling.pooling import PoolingMode
from paraxl.modeling.progress import PROGRESS_THRESHOLD, EncodeProgress
from paraxl.modeling.protocol import check_encode_arguments
from paraxl.modeling.st_layout import EncoderSettings, read_settings
from paraxl.modeling.tokenizer_files import load_tokenizer

FloatMatrix = npt.NDArray[np.float32]


def pool_hidden_states(
    hidden: FloatMatrix, attention_mask: npt.NDArray[np.int64], mode: PoolingMode, normalize: bool
) -> FloatMatrix:
    """numpy twin of ``pooling.pool`` (+ ``F.normalize``): (batch, seq, dim), (batch, seq) -> (batch, dim).

    ``mean`` averages non-padding tokens (count clamped to >= 1), ``cls`` takes token 0;
    normalisation divides by ``max(||x||, 1e-12)`` as torch does.
    """
    if mode == "cls":
        pooled = hidden[:, 0]
    elif mode == "mean":
        mask = attention_mask.astype(np.float32)  # (batch, seq)
        summed = np.einsum("bsd,bs->bd", hidden, mask)  # (batch, dim)
        pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1.0)
    else:
        raise ValueError(f"unknown pooling mode {mode!r}")
    pooled = pooled.astype(np.float32, copy=False)
    if normalize:
        pooled = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    return pooled


def pad_batch(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Right-pad token id lists to the longest: ``(input_ids, attention_mask)``, both (batch, seq) int64."""
    width = max(len(row) for row in rows)
    input_ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    attention_mask = np.zeros((len(rows), width), dtype=np.int64)
    for index, row in enumerate(rows):
        input_ids[index, : len(row)] = row
        attention_mask[index, : len(row)] = 1
    return input_ids, attention_mask


class OnnxEncoder:
    """ONNX Runtime inference for a model folder exported by ``paraxl export-onnx``.

    ``fingerprint`` = sha256 of (model folder fingerprint, backend name, sha256 of the .onnx
    file), so caches never mix fp32, int8 and torch vectors. ``encode`` may be called from
    several threads: ONNX Runtime's ``run`` is thread-safe, tokenization is serialised (a
    Rust fast tokenizer refuses concurrent calls that change its padding/truncation state).
    """

    def __init__(
        self,
        session: onnxruntime.InferenceSession,
        tokenizer: PreTrainedTokenizerBase,
        settings: EncoderSettings,
        dimension: int,
        backend: str,
        fingerprint: str,
    ) -> None:
        self.session = session
        self.tokenizer = tokenizer
        self.settings = settings
        self.backend = backend
        self._dimension = dimension
        self._fingerprint = fingerprint
        self._pad_id = int(tokenizer.pad_token_id) if tokenizer.pad_token_id is not None else 0
        self._tokenizer_lock = threading.Lock()

    @classmethod
    def load(cls, folder: str | Path, backend: str = "onnx") -> OnnxEncoder:
        """Load ``folder``'s verified export for ``backend`` ("onnx" or "onnx-int8")."""
        folder = Path(folder)
        exported = locate_export(folder, backend)
        config = read_json_object(folder / "config.json")
        tokenizer = load_tokenizer(folder)
        limit = int(config.get("max_position_embeddings", 512))
        settings = read_settings(folder, fallback_max_length=min(limit, int(tokenizer.model_max_length)))
        with loading(exported.path, "ONNX graph"):  # onnxruntime's errors share no public base class
            session = onnxruntime.InferenceSession(
                str(exported.path), session_options(), providers=["CPUExecutionProvider"]
            )
        names = [node.name for node in session.get_inputs()]
        if sorted(names) != sorted(INPUT_NAMES):
            raise ModelFormatError(f"{exported.path}: inputs {names}, expected {list(INPUT_NAMES)}")
        width = session.get_outputs()[0].shape[-1]
        dimension = width if isinstance(width, int) else int(config["hidden_size"])
        digest = hashlib.sha256(
            f"{model_folder_fingerprint(folder)}\0{backend}\0{exported.sha256}".encode()
        ).hexdigest()
        return cls(session, tokenizer, settings, dimension, backend, digest)

    # ------------------------------------------------------------ SentenceEncoder
    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def fingerprint(self) -> str | None:
        return self._fingerprint

    def prompt_prefix(self, prompt_name: str | None = None) -> str:
        """The prefix for ``prompt_name`` (default: the model's default prompt; ``""`` for none)."""
        return self.settings.prompt_prefix(prompt_name)

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = 32,
        prompt_name: str | None = None,
        show_progress: bool | None = None,
    ) -> FloatMatrix:
        """Embed ``texts`` -> float32 (n, dim), in input order (see the class docstring)."""
        check_encode_arguments(texts, batch_size)
        prefix = self.prompt_prefix(prompt_name)
        result = np.empty((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return result
        token_ids = self._tokenize([prefix + text for text in texts])
        # longest first (stable): each batch pads to a similar length; rows go back by index
        order = np.argsort([-len(ids) for ids in token_ids], kind="stable")
        show = len(texts) > PROGRESS_THRESHOLD if show_progress is None else show_progress
        settings = self.settings
        with EncodeProgress(show, len(texts)) as advance:
            for start in range(0, len(texts), batch_size):
                rows = order[start : start + batch_size]
                input_ids, attention_mask = pad_batch([token_ids[i] for i in rows], self._pad_id)
                feeds = {"input_ids": input_ids, "attention_mask": attention_mask}
                hidden = self.session.run([OUTPUT_NAME], feeds)[0]  # (batch, seq, dim)
                result[rows] = pool_hidden_states(hidden, attention_mask, settings.pooling, settings.normalize)
                advance(len(rows))
        return result

    def _tokenize(self, texts: list[str]) -> list[list[int]]:
        """Token ids per text (special tokens added, truncated to ``max_seq_length``), unpadded."""
        with self._tokenizer_lock:
            encoded = self.tokenizer(texts, truncation=True, max_length=self.settings.max_seq_length)
        ids: list[list[int]] = encoded["input_ids"]
        return ids
