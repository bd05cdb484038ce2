"""Mega-batch hard negatives (paper 1) as a loss over cached embeddings.

A mega-batch of K mini-batches is embedded once; for each anchor the ``k`` most similar
candidates of the *whole* mega-batch that are not of its group become extra negatives of
its mini-batch's additive-margin loss. Used inside :func:`paraxl.losses.cached.cached_backward`,
the gradient is exact (mined negatives included) while memory stays bounded by a mini-batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from paraxl.losses.additive_margin import additive_margin_loss
from paraxl.mining.hard_negatives import gather_negatives, mine_hard_negatives


@dataclass(frozen=True)
class MegaBatchConfig:
    mini_batch_size: int
    top_k: int = 1
    margin: float = 0.3
    scale: float = 20.0
    ceiling: float | None = None
    relative_ceiling: float | None = None


def mega_batch_loss(
    anchors: torch.Tensor,
    positives: torch.Tensor,
    groups: torch.Tensor,
    config: MegaBatchConfig,
    explicit_negatives: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean over mini-batches of AM loss with in-batch + explicit + mined negatives.

    Shapes: anchors, positives (N, dim) row-aligned; groups (N,); explicit_negatives
    (N, e, dim) with NaN padding, or None. Mini-batch b is rows ``[b*B, (b+1)*B)``.
    """
    with torch.no_grad():
        scores = F.normalize(anchors, dim=-1) @ F.normalize(positives, dim=-1).T  # (N, N)
        same_group = groups[:, None] == groups[None, :]  # includes each anchor's own positive
        mined = mine_hard_negatives(
            scores,
            same_group,
            config.top_k,
            ceiling=config.ceiling,
            positive_scores=scores.diagonal(),
            relative_ceiling=config.relative_ceiling,
        )  # (N, k)
    losses = []
    for start in range(0, anchors.shape[0], config.mini_batch_size):
        rows = slice(start, start + config.mini_batch_size)
        extra = gather_negatives(positives, mined[rows])  # (B, k, dim)
        if explicit_negatives is not None:
            extra = torch.cat([explicit_negatives[rows], extra], dim=1)
        losses.append(
            additive_margin_loss(
                anchors[rows],
                positives[rows],
                margin=config.margin,
                scale=config.scale,
                extra_negatives=extra,
                groups=groups[rows],
            )
        )
    return torch.stack(losses).mean()
