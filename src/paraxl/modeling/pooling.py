"""Token-to-sentence pooling."""

from __future__ import annotations

from typing import Literal

import torch

PoolingMode = Literal["mean", "cls"]
POOLING_MODES: tuple[PoolingMode, ...] = ("mean", "cls")


def pool(token_embeddings: torch.Tensor, attention_mask: torch.Tensor, mode: PoolingMode) -> torch.Tensor:
    """Pool token states into one vector per sentence.

    Shapes: token_embeddings (batch, seq, dim), attention_mask (batch, seq) -> (batch, dim).
    ``mean`` averages the non-padding tokens (special tokens and prompt included, as
    sentence-transformers does); ``cls`` takes the first token.
    """
    if mode == "cls":
        return token_embeddings[:, 0]
    if mode == "mean":
        mask = attention_mask.unsqueeze(-1).to(token_embeddings.dtype)  # (batch, seq, 1)
        summed = (token_embeddings * mask).sum(dim=1)  # (batch, dim)
        counts = mask.sum(dim=1).clamp(min=1.0)  # (batch, 1)
        return summed / counts
    raise ValueError(f"unknown pooling mode {mode!r}; expected one of {POOLING_MODES}")
