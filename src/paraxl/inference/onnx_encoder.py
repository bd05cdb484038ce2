"""``OnnxEncoder``: a model folder's ONNX export on ONNX Runtime, behind ``SentenceEncoder``.

The graph computes the transformer's token states; pooling and L2 normalisation follow the
folder's sentence-transformers settings here in numpy (see ``onnx_files`` for the layout).
Encoding follows the batching policy every backend shares (``paraxl.modeling.batching``): tokenize
once, sort by token count, token-budget batches, input order restored; so it matches ``BiEncoder.encode``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime
from transformers import PreTrainedTokenizerBase

from paraxl.errors import ModelFormatError
from paraxl.inference.onnx_files import INPUT_NAMES, OUTPUT_NAME, ExportedFile, locate_export, open_session
from paraxl.modeling.batching import (
    DEFAULT_MAX_TOKENS,
    Tokenized,
    encode_in_batches,
    prefixed,
    text_tokenizer,
)
from paraxl.modeling.model_files import loading, read_json_object
from paraxl.modeling.pooling import PoolingMode
from paraxl.modeling.protocol import check_batch_size, check_encode_arguments, check_texts
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


class OnnxEncoder:
    """ONNX Runtime inference for a model folder exported by ``paraxl export-onnx``.

    ``fingerprint`` = sha256 of (model folder fingerprint, backend name, sha256 of the .onnx
    file), so caches never mix fp32, int8 and torch vectors. ``encode`` may be called from
    several threads: ONNX Runtime's ``run`` is thread-safe, and tokenization uses a private copy of
    the Rust tokenizer that no call changes (``batching.TextTokenizer``). ``max_batch_tokens``: the
    padded-token budget of one forward pass (``None``: rows only).
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
        self.max_batch_tokens: int | None = DEFAULT_MAX_TOKENS
        self._pad_id = int(tokenizer.pad_token_id) if tokenizer.pad_token_id is not None else 0

    @classmethod
    def load(cls, folder: str | Path, backend: str = "onnx") -> OnnxEncoder:
        """Load ``folder``'s verified export for ``backend`` ("onnx" or "onnx-int8")."""
        folder = Path(folder)
        return cls.open(folder, locate_export(folder, backend))

    @classmethod
    def open(cls, folder: Path, exported: ExportedFile) -> OnnxEncoder:
        """``folder``'s tokenizer and settings around the graph ``exported`` names, as :meth:`load` opens them.

        ``exported`` is taken as given (not checked against the folder's record): the export's check
        opens its new graph this way, before that graph has a record.
        """
        backend = exported.backend
        config = read_json_object(folder / "config.json")
        tokenizer = load_tokenizer(folder)
        limit = int(config.get("max_position_embeddings", 512))
        settings = read_settings(folder, fallback_max_length=min(limit, int(tokenizer.model_max_length)))
        with loading(exported.path, "ONNX graph"):  # onnxruntime's errors share no public base class
            session = open_session(exported.path)
        names = [node.name for node in session.get_inputs()]
        if sorted(names) != sorted(INPUT_NAMES):
            raise ModelFormatError(f"{exported.path}: inputs {names}, expected {list(INPUT_NAMES)}")
        outputs = [node.name for node in session.get_outputs()]
        if outputs != [OUTPUT_NAME]:  # e.g. a cross-encoder's export (logits): it has no token states to pool
            raise ModelFormatError(
                f"{exported.path}: outputs {outputs}, expected [{OUTPUT_NAME!r}]; a cross-encoder's export scores "
                "pairs and gives no embeddings"
            )
        width = session.get_outputs()[0].shape[-1]
        dimension = width if isinstance(width, int) else int(config["hidden_size"])
        digest = exported.encoder_fingerprint(folder)
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

    def tokenize_texts(self, texts: Sequence[str], prompt_name: str | None = None) -> Tokenized:
        """Token ids per text as the model reads them: prompt prefix, special tokens, truncated; unpadded."""
        check_texts(texts)
        prefix = self.prompt_prefix(prompt_name)
        tokenizer = text_tokenizer(self, self.tokenizer, self.settings.max_seq_length)
        return tokenizer(prefixed(texts, prefix))

    def encode_tokenized(
        self, tokenized: Tokenized, batch_size: int = 32, show_progress: bool | None = None
    ) -> FloatMatrix:
        """Embed :meth:`tokenize_texts`'s output -> float32 (n, dim), in input order."""
        check_batch_size(batch_size)
        settings, session = self.settings, self.session

        def forward(input_ids: npt.NDArray[np.int64], attention_mask: npt.NDArray[np.int64]) -> FloatMatrix:
            feeds = {"input_ids": input_ids, "attention_mask": attention_mask}
            hidden = session.run([OUTPUT_NAME], feeds)[0]  # (batch, seq, dim)
            return pool_hidden_states(hidden, attention_mask, settings.pooling, settings.normalize)

        return encode_in_batches(
            tokenized,
            forward,
            dimension=self.dimension,
            batch_size=batch_size,
            max_tokens=self.max_batch_tokens,
            pad_id=self._pad_id,
            show_progress=show_progress,
        )

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = 32,
        prompt_name: str | None = None,
        show_progress: bool | None = None,
    ) -> FloatMatrix:
        """Embed ``texts`` -> float32 (n, dim), in input order: :meth:`tokenize_texts` + :meth:`encode_tokenized`."""
        check_encode_arguments(texts, batch_size)
        return self.encode_tokenized(self.tokenize_texts(texts, prompt_name), batch_size, show_progress)
