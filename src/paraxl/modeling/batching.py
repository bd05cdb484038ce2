"""The one batching policy of every inference backend (PyTorch ``BiEncoder``, ONNX ``OnnxEncoder``, the service).

1. Tokenize once (:class:`TextTokenizer` -> :class:`Tokenized`): one batch call on the fast tokenizer,
   prompt prefix and special tokens included, truncated to ``max_seq_length``, unpadded.
2. Plan (:func:`plan_batches`): indices sorted by token count, longest first (stable), cut into batches of
   at most ``batch_size`` rows and at most ``max_tokens`` padded tokens, so each batch pads little and a
   batch of long texts stays small.
3. Pad each batch to its longest row (:func:`pad_batch`), run the backend's forward pass, and write its
   rows back at their input positions (:func:`encode_in_batches`), so the result is in input order.

Texts are sorted by tokens, not characters (what sentence-transformers does): the character count of a
Chinese and an English sentence says little about their token counts, and every token of padding costs
as much as a real one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from paraxl.errors import InputError
from paraxl.modeling.progress import PROGRESS_THRESHOLD, EncodeProgress

if TYPE_CHECKING:  # transformers loads only where a model does
    from transformers import PreTrainedTokenizerBase

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "BatchForward",
    "TextTokenizer",
    "Tokenized",
    "encode_in_batches",
    "pad_batch",
    "plan_batches",
]

IntMatrix = npt.NDArray[np.int64]
FloatMatrix = npt.NDArray[np.float32]
# (input_ids, attention_mask), both (batch, seq) int64 -> embeddings (batch, dim) float32
BatchForward = Callable[[IntMatrix, IntMatrix], FloatMatrix]

# Padded tokens per forward pass at most: 32 rows x 64 tokens. Measured with multilingual-e5-small on
# one thread (CPU seconds, so the load of a shared 2-core AMD EPYC counts little), tokens per CPU-second
# torch / ONNX fp32, budgets 1024 / 2048 / 4096 / none (32 rows):
#   32 texts of ~174 tokens (233 max): 1472/1827, 1325/1483, 1337/1246, 1035/1019
#   256 PAWS-X sentences (~33 tokens):  1580/1868, 1551/1882, -, 1686/1817 (all within noise)
# A batch's activations (tokens x 1536 floats in the feed-forward layer: 12 MiB at 2,048 tokens, 45 MiB
# at 32 x 233) fall out of cache as batches grow, so long texts run ~30 % faster in smaller batches,
# while PAWS-X and Tatoeba batches (32 rows under 64 tokens) never reach the budget and stay plain
# 32-row batches. 1,024 was a little faster still on one thread; 2,048 keeps enough rows per matmul
# to split over many cores.
DEFAULT_MAX_TOKENS = 32 * 64

_build_lock = threading.Lock()  # module level: a lock on an encoder would stop it being deep-copied


@dataclass(frozen=True, eq=False)
class Tokenized:
    """Texts as the model reads them: per text its token ids (prompt prefix and special tokens
    included, truncated to ``max_seq_length``), unpadded. ``lengths`` (n,) int64: tokens per text.

    Made by an encoder's ``tokenize_texts`` and only valid for encoders with the same tokenizer.
    """

    input_ids: tuple[Sequence[int], ...]
    lengths: npt.NDArray[np.int64] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        counts = np.fromiter(map(len, self.input_ids), dtype=np.int64, count=len(self.input_ids))
        object.__setattr__(self, "lengths", counts)

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def total_tokens(self) -> int:
        return int(self.lengths.sum())

    @classmethod
    def concat(cls, parts: Sequence[Tokenized]) -> Tokenized:
        """Several inputs as one, in order (the service merges queued requests' inputs this way)."""
        return cls(tuple(chain.from_iterable(part.input_ids for part in parts)))


class TextTokenizer:
    """Texts -> :class:`Tokenized` with one batch call, safe to call from many threads at once.

    A fast (Rust) tokenizer keeps truncation and padding as mutable state that every Hugging Face call
    sets again, and refuses a call from one thread while another changes it. This class encodes with a
    private copy of the Rust tokenizer whose truncation is set once, here, and never changed, so
    concurrent calls only read it (and skip transformers' per-call Python work: ~2x faster measured on
    2,179 PAWS-X + Tatoeba texts). A tokenizer without a Rust backend is called under a lock instead.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, max_length: int) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length
        self._backend: Any = None
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is not None:
            from tokenizers import Tokenizer

            private = Tokenizer.from_str(backend.to_str())
            private.no_padding()
            side = getattr(tokenizer, "truncation_side", "right")
            private.enable_truncation(max_length, strategy="longest_first", direction=side)
            self._backend = private

    def __call__(self, texts: Sequence[str]) -> Tokenized:
        if self._backend is not None:
            encode = getattr(self._backend, "encode_batch_fast", self._backend.encode_batch)  # no offsets
            return Tokenized(tuple(encoding.ids for encoding in encode(list(texts))))
        with _build_lock:  # pragma: no cover (every bundled model has a fast tokenizer)
            encoded = self.tokenizer(list(texts), truncation=True, max_length=self.max_length)
        return Tokenized(tuple(encoded["input_ids"]))

    def matches(self, tokenizer: PreTrainedTokenizerBase, max_length: int) -> bool:
        return self.tokenizer is tokenizer and self.max_length == max_length


def text_tokenizer(owner: object, tokenizer: PreTrainedTokenizerBase, max_length: int) -> TextTokenizer:
    """``owner``'s :class:`TextTokenizer` for ``tokenizer`` and ``max_length``, built once and kept on it
    (as ``_text_tokenizer``); built again when the encoder's tokenizer or max length changed."""
    current = getattr(owner, "_text_tokenizer", None)
    if isinstance(current, TextTokenizer) and current.matches(tokenizer, max_length):
        return current
    with _build_lock:
        current = getattr(owner, "_text_tokenizer", None)
        if not (isinstance(current, TextTokenizer) and current.matches(tokenizer, max_length)):
            current = TextTokenizer(tokenizer, max_length)
            object.__setattr__(owner, "_text_tokenizer", current)  # plain attribute, also on an nn.Module
    return current


def prefixed(texts: Sequence[str], prefix: str) -> list[str]:
    """``texts`` with the prompt ``prefix`` in front (a copy of the list when there is none)."""
    return [prefix + text for text in texts] if prefix else list(texts)


def plan_batches(
    lengths: Sequence[int] | npt.NDArray[np.integer[Any]], batch_size: int, max_tokens: int | None = None
) -> list[npt.NDArray[np.int64]]:
    """Index batches: sorted by token count, longest first (ties keep input order), each at most
    ``batch_size`` rows and, when ``max_tokens`` is set, rows x padded length <= ``max_tokens``.

    A row longer than ``max_tokens`` forms a batch of its own. Every index appears exactly once.

    Example:
        >>> [b.tolist() for b in plan_batches([3, 9, 5, 9], batch_size=2, max_tokens=12)]
        [[1], [3], [2, 0]]
    """
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    if max_tokens is not None and max_tokens < 1:
        raise InputError(f"max_tokens must be >= 1 or None, got {max_tokens}")
    counts = np.asarray(lengths, dtype=np.int64).reshape(-1)
    order = np.argsort(-counts, kind="stable")  # (n,) longest first
    batches = []
    start = 0
    while start < len(order):
        width = max(int(counts[order[start]]), 1)  # the batch's longest row: what every row pads to
        rows = batch_size if max_tokens is None else max(1, min(batch_size, max_tokens // width))
        batches.append(order[start : start + rows])
        start += rows
    return batches


def pad_batch(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[IntMatrix, IntMatrix]:
    """Right-pad token id lists to the longest: ``(input_ids, attention_mask)``, both (batch, seq) int64."""
    lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))  # (batch,)
    width = int(lengths.max()) if len(rows) else 0
    attention_mask = (np.arange(width) < lengths[:, None]).astype(np.int64)  # (batch, seq)
    input_ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    # row-major order of the mask's ones = the rows' tokens one after another
    input_ids[attention_mask.astype(bool)] = np.fromiter(chain.from_iterable(rows), np.int64, int(lengths.sum()))
    return input_ids, attention_mask


def encode_in_batches(
    tokenized: Tokenized,
    forward: BatchForward,
    *,
    dimension: int,
    batch_size: int,
    max_tokens: int | None,
    pad_id: int,
    show_progress: bool | None = None,
) -> FloatMatrix:
    """Embed ``tokenized`` -> float32 (n, dim) in input order: planned batches, padded, ``forward``, rows back.

    ``show_progress`` None: a progress bar above ``PROGRESS_THRESHOLD`` texts.
    """
    result = np.empty((len(tokenized), dimension), dtype=np.float32)
    show = len(tokenized) > PROGRESS_THRESHOLD if show_progress is None else show_progress
    with EncodeProgress(show, len(tokenized)) as advance:
        for rows in plan_batches(tokenized.lengths, batch_size, max_tokens):
            input_ids, attention_mask = pad_batch([tokenized.input_ids[i] for i in rows], pad_id)
            result[rows] = forward(input_ids, attention_mask)  # (len(rows), dim) back at their input rows
            advance(len(rows))
    return result
