"""Pure hard-negative selection: ``scores, exclusion mask, k -> indices``, and its config section."""

from __future__ import annotations

import torch
from pydantic import BaseModel, Field

from paraxl.losses.step import SECTION_CONFIG


class HardNegativeConfig(BaseModel):
    """The ``mining:`` section: mega-batch hard negatives (paper 1), mined across all mini-batches
    of a step, for the pair losses. (Hard-negative mining; bitext mining is ``paraxl.mining``.)"""

    model_config = SECTION_CONFIG

    enabled: bool = False
    top_k: int = Field(default=1, ge=1)
    # drop candidates above this cosine (likely false negatives)
    ceiling: float | None = Field(default=None, ge=-1.0, le=1.0)
    # drop candidates above (positive cosine - this); a difference of two cosines
    relative_ceiling: float | None = Field(default=None, ge=-2.0, le=2.0)


def mine_hard_negatives(
    scores: torch.Tensor,
    exclude: torch.Tensor,
    k: int,
    *,
    ceiling: float | None = None,
    positive_scores: torch.Tensor | None = None,
    relative_ceiling: float | None = None,
) -> torch.Tensor:
    """Pick the ``k`` highest-scoring allowed candidates per anchor.

    Args:
        scores: (n, m) anchor x candidate similarities.
        exclude: (n, m) bool, True where a candidate must never be a negative (its own
            positive, anything of the same group: translations, duplicates).
        k: negatives per anchor.
        ceiling: drop candidates scoring above this absolute value (likely false negatives).
        positive_scores: (n,) each anchor's positive score, needed for ``relative_ceiling``.
        relative_ceiling: drop candidates scoring above ``positive_score - relative_ceiling``
            (e.g. 0.0: nothing that beats the positive).
    Returns:
        (n, k) int64 candidate indices, best first; ``-1`` where fewer than ``k`` are allowed.
        Ties are broken by the lower candidate index (deterministic).
    """
    if scores.shape != exclude.shape:
        raise ValueError(f"scores {tuple(scores.shape)} and exclude {tuple(exclude.shape)} differ")
    blocked = exclude.clone()
    if ceiling is not None:
        blocked |= scores > ceiling
    if relative_ceiling is not None:
        if positive_scores is None:
            raise ValueError("relative_ceiling needs positive_scores")
        blocked |= scores > (positive_scores[:, None] - relative_ceiling)
    masked = scores.detach().masked_fill(blocked, float("-inf"))
    # a stable descending sort keeps equal scores in index order
    order = torch.sort(masked, dim=1, descending=True, stable=True).indices[:, :k]  # (n, <=k)
    chosen_scores = torch.gather(masked, 1, order)
    order = order.masked_fill(torch.isinf(chosen_scores), -1)
    if order.shape[1] < k:
        pad = torch.full((order.shape[0], k - order.shape[1]), -1, dtype=order.dtype, device=order.device)
        order = torch.cat([order, pad], dim=1)
    return order


def gather_negatives(candidates: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Shapes: candidates (m, dim), indices (n, k) with -1 padding -> (n, k, dim), NaN rows for padding."""
    safe = indices.clamp(min=0)
    gathered = candidates[safe]  # (n, k, dim)
    return gathered.masked_fill((indices < 0)[..., None], float("nan"))
