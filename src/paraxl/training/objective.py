"""The step loss: a function of all embeddings of a step (T, dim) and its layout."""

from __future__ import annotations

import torch

from paraxl.losses.hard_negatives import gather_negatives
from paraxl.losses.mega_batch import MegaBatchConfig, mega_batch_loss
from paraxl.losses.multi_positive import multi_positive_loss
from paraxl.training.config import DistillConfig, LossConfig, MiningConfig
from paraxl.training.distillation import distillation_loss
from paraxl.training.layout import StepLayout


def step_loss(
    reps: torch.Tensor,
    layout: StepLayout,
    loss: LossConfig,
    mining: MiningConfig,
    teacher: tuple[torch.Tensor, DistillConfig] | None = None,
) -> torch.Tensor:
    """Mean over the step's mini-batches of the configured loss.

    Pair losses: each mini-batch uses its in-batch negatives, its explicit negatives and,
    with mining, the hardest other-group candidates of the whole step (mega-batch).
    Multi-positive: each mini-batch's groups are positives of each other's members.
    ``teacher``: (targets (n, 1 + e), distill): plus ``distill.weight`` x the distillation loss.
    """
    reps = reps.float()  # losses in float32 even under bf16 autocast
    contrastive = _contrastive_loss(reps, layout, loss, mining)
    if teacher is None:
        return contrastive
    targets, distill = teacher
    return contrastive + distill.weight * distillation_loss(
        reps, layout, targets, kind=distill.loss, scale=distill.scale
    )


def _contrastive_loss(reps: torch.Tensor, layout: StepLayout, loss: LossConfig, mining: MiningConfig) -> torch.Tensor:
    if loss.kind == "multi_positive":
        per_batch = [
            multi_positive_loss(
                reps[bounds], layout.text_groups[bounds], temperature=loss.temperature, variant=loss.variant
            )
            for bounds in layout.mini_batch_texts
        ]
        return torch.stack(per_batch).mean()
    if loss.kind == "additive_margin":
        margin, scale, direction = loss.margin, loss.scale, loss.direction
    else:  # info_nce: margin 0, one direction, scale = 1 / temperature
        margin, scale, direction = 0.0, 1.0 / loss.temperature, "forward"
    config = MegaBatchConfig(
        mini_batch_size=layout.pairs_per_mini_batch,
        top_k=mining.top_k if mining.enabled else 0,
        margin=margin,
        scale=scale,
        direction=direction,
        ceiling=mining.ceiling,
        relative_ceiling=mining.relative_ceiling,
    )
    explicit = gather_negatives(reps, layout.negatives) if layout.negatives.shape[1] else None  # (n, e, dim)
    return mega_batch_loss(reps[layout.anchors], reps[layout.positives], layout.pair_groups, config, explicit)
