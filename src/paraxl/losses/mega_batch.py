"""Mega-batch hard negatives (paper 1) as a loss over cached embeddings.

A mega-batch of K mini-batches is embedded once; for each anchor the ``k`` most similar
candidates of the *whole* mega-batch that are not of its group become extra negatives of
its mini-batch's additive-margin loss. Used inside :func:`paraxl.losses.cached.cached_backward`,
the gradient is exact (mined negatives included) while memory stays bounded by a mini-batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F

from paraxl.losses.additive_margin import Direction, MarginSoftmax, additive_margin_loss
from paraxl.losses.hard_negatives import HardNegativeConfig, gather_negatives, mine_hard_negatives
from paraxl.losses.step import StepIndex


@dataclass(frozen=True)
class MegaBatchConfig:
    mini_batch_size: int
    top_k: int = 1  # 0: no mining (in-batch + explicit negatives only)
    margin: float = 0.3
    scale: float = 20.0
    direction: Direction = "both"
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
    mined = _mine(anchors, positives, groups, config) if config.top_k > 0 else None  # (N, k)
    losses = []
    for start in range(0, anchors.shape[0], config.mini_batch_size):
        rows = slice(start, start + config.mini_batch_size)
        parts = [] if explicit_negatives is None else [explicit_negatives[rows]]
        if mined is not None:
            parts.append(gather_negatives(positives, mined[rows]))  # (B, k, dim)
        extra = torch.cat(parts, dim=1) if parts else None
        losses.append(
            additive_margin_loss(
                anchors[rows],
                positives[rows],
                margin=config.margin,
                scale=config.scale,
                direction=config.direction,
                extra_negatives=extra,
                groups=groups[rows],
            )
        )
    return torch.stack(losses).mean()


class PairLossConfig(Protocol):
    """A pair loss kind's section: additive-margin softmax parameters and explicit negatives."""

    @property
    def explicit_negatives(self) -> int: ...

    def margin_softmax(self) -> MarginSoftmax: ...


def pair_step_loss(
    reps: torch.Tensor, step: StepIndex, loss: PairLossConfig, mining: HardNegativeConfig
) -> torch.Tensor:
    """The step loss of a pair loss kind: :func:`mega_batch_loss` over the step's pairs.

    Each mini-batch uses its in-batch negatives, its explicit negatives and, with ``mining``
    enabled, the hardest other-group candidates of the whole step (mega-batch).
    Shapes: reps (T, dim) in the step's text order.
    """
    margin, scale, direction = loss.margin_softmax()
    config = MegaBatchConfig(
        mini_batch_size=step.pairs_per_mini_batch,
        top_k=mining.top_k if mining.enabled else 0,
        margin=margin,
        scale=scale,
        direction=direction,
        ceiling=mining.ceiling,
        relative_ceiling=mining.relative_ceiling,
    )
    explicit = gather_negatives(reps, step.negatives) if step.negatives.shape[1] else None  # (n, e, dim)
    return mega_batch_loss(reps[step.anchors], reps[step.positives], step.pair_groups, config, explicit)


@torch.no_grad()
def _mine(
    anchors: torch.Tensor, positives: torch.Tensor, groups: torch.Tensor, config: MegaBatchConfig
) -> torch.Tensor:
    """Indices (N, k) into ``positives`` of each anchor's hardest other-group candidates."""
    scores = F.normalize(anchors, dim=-1) @ F.normalize(positives, dim=-1).T  # (N, N)
    same_group = groups[:, None] == groups[None, :]  # includes each anchor's own positive
    return mine_hard_negatives(
        scores,
        same_group,
        config.top_k,
        ceiling=config.ceiling,
        positive_scores=scores.diagonal(),
        relative_ceiling=config.relative_ceiling,
    )
