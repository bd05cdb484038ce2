"""The inference interface every backend offers (PyTorch ``BiEncoder``, ONNX Runtime, ...)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from paraxl.errors import InputError
from paraxl.modeling.st_layout import EncoderSettings


@runtime_checkable
class SentenceEncoder(Protocol):
    """Texts -> float32 (n, dim) embeddings in input order, L2-normalised if ``settings.normalize``.

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


def check_encode_arguments(texts: Sequence[str], batch_size: int) -> None:
    """The argument checks every ``encode`` implementation makes before any work."""
    if isinstance(texts, str):
        raise InputError("encode() takes a list of texts, not a single string")
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise InputError(f"text {index} is {type(text).__name__}, not str")
