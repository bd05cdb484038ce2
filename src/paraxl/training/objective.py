"""The step loss: a function of all embeddings of a step (T, dim) and its layout."""

from __future__ import annotations

import torch

from paraxl.losses.distillation import distillation_loss
from paraxl.losses.hard_negatives import HardNegativeConfig
from paraxl.losses.registry import LossConfig, contrastive_loss
from paraxl.training.config import DistillConfig
from paraxl.training.layout import StepLayout


def step_loss(
    reps: torch.Tensor,
    layout: StepLayout,
    loss: LossConfig,
    mining: HardNegativeConfig,
    teacher: tuple[torch.Tensor, DistillConfig] | None = None,
) -> torch.Tensor:
    """Mean over the step's mini-batches of the configured loss (see :mod:`paraxl.losses.registry`).

    Pair losses: each mini-batch uses its in-batch negatives, its explicit negatives and,
    with mining, the hardest other-group candidates of the whole step (mega-batch).
    Multi-positive: each mini-batch's groups are positives of each other's members.
    ``teacher``: (targets (n, 1 + e), distill): plus ``distill.weight`` x the distillation loss.
    """
    reps = reps.float()  # losses in float32 even under bf16 autocast
    contrastive = contrastive_loss(reps, layout, loss, mining)
    if teacher is None:
        return contrastive
    targets, distill = teacher
    return contrastive + distill.weight * distillation_loss(
        reps, layout, targets, kind=distill.loss, scale=distill.scale
    )
