"""The inference interface every backend offers (PyTorch ``BiEncoder``, ONNX Runtime, ...)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

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
