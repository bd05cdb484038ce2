"""The inference interfaces: ``SentenceEncoder`` (every inference backend: PyTorch ``BiEncoder``, ONNX
Runtime, ...) and ``Embedder`` (texts -> vectors, what evaluation tasks and bitext mining consume)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from paraxl.errors import InputError
from paraxl.modeling.batching import Tokenized
from paraxl.modeling.st_layout import EncoderSettings

FloatMatrix = npt.NDArray[np.float32]


@runtime_checkable
class SentenceEncoder(Protocol):
    """Texts -> float32 (n, dim) embeddings in input order, L2-normalised if ``settings.normalize``.

    Every backend batches the same way (``paraxl.modeling.batching``): ``encode`` is
    ``encode_tokenized(tokenize_texts(texts, prompt_name), batch_size)``, and the two halves are part of
    the interface so a caller can tokenize once and use the counts too (the service's usage and
    metrics), tokenize in another thread than it encodes in, or merge several inputs into one encode
    (the service's queue). ``tokenize_texts`` is safe to call from several threads at once.

    ``fingerprint`` identifies what decides the vectors (weights + backend): two encoders
    with the same fingerprint give the same embeddings, so caches may key on it. ``None``
    for an in-memory model whose files are not known.
    """

    settings: EncoderSettings

    @property
    def dimension(self) -> int: ...

    @property
    def fingerprint(self) -> str | None: ...

    def prompt_prefix(self, prompt_name: str | None = None) -> str: ...

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = 32,
        prompt_name: str | None = None,
        show_progress: bool | None = None,
    ) -> np.ndarray: ...

    def tokenize_texts(self, texts: Sequence[str], prompt_name: str | None = None) -> Tokenized: ...

    def encode_tokenized(
        self, tokenized: Tokenized, batch_size: int = 32, show_progress: bool | None = None
    ) -> np.ndarray: ...


class Embedder(Protocol):
    """Anything that maps texts to one L2-comparable vector each, in input order: ``embed(texts) -> (n, dim)``.

    Usually a cached ``SentenceEncoder`` (``paraxl.evaluation.embeddings.CachedEmbedder``); a mock in tests.
    """

    def embed(self, texts: Sequence[str]) -> FloatMatrix: ...


def check_encode_arguments(texts: Sequence[str], batch_size: int) -> None:
    """The argument checks every ``encode`` implementation makes before any work."""
    check_texts(texts)
    check_batch_size(batch_size)


def check_texts(texts: Sequence[str]) -> None:
    """A list of strings (not one string): InputError naming the first bad item otherwise."""
    if isinstance(texts, str):
        raise InputError("encode() takes a list of texts, not a single string")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise InputError(f"text {index} is {type(text).__name__}, not str")


def check_batch_size(batch_size: int) -> None:
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
