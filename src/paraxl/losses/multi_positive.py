"""Multi-positive contrastive loss (MPCL, paper 2, arXiv 2309.08929).

A batch holds groups: one sentence in several languages shares a group id. For anchor i,
every other member of its group is a positive and every item of another group a negative;
the anchor itself is excluded from its own softmax.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from paraxl.losses.hard_negatives import HardNegativeConfig
from paraxl.losses.step import LossSection, StepIndex

Variant = Literal["mean_log_prob", "log_sum_prob"]


class MultiPositiveConfig(LossSection):
    """``loss: {kind: multi_positive}``: every other member of an anchor's group is a positive."""

    kind: Literal["multi_positive"] = "multi_positive"
    temperature: float = Field(default=0.05, gt=0.0)
    variant: Variant = "mean_log_prob"
    members_per_group: int | None = Field(default=None, ge=2)  # K texts drawn per group; None: all


def multi_positive_loss(
    embeddings: torch.Tensor,
    groups: torch.Tensor,
    *,
    temperature: float = 0.05,
    variant: Variant = "mean_log_prob",
) -> torch.Tensor:
    """Args:
        embeddings: (n, dim), normalised inside.
        groups: (n,) integer group ids; every group needs at least 2 members in the batch.
        temperature: softmax temperature (paper 2: 0.05).
        variant: ``"mean_log_prob"``: mean over positives of -log softmax (SupCon "out");
            ``"log_sum_prob"``: -log of the summed probability of all positives.
    Returns:
        Scalar mean over anchors.
    """
    unit = F.normalize(embeddings, dim=-1)  # (n, dim)
    n = unit.shape[0]
    self_mask = torch.eye(n, dtype=torch.bool, device=unit.device)
    logits = (unit @ unit.T / temperature).masked_fill(self_mask, float("-inf"))  # (n, n)
    log_prob = torch.log_softmax(logits, dim=1)
    positive = (groups[:, None] == groups[None, :]) & ~self_mask  # (n, n)
    counts = positive.sum(dim=1)
    if bool((counts == 0).any()):
        raise ValueError("every anchor needs at least one positive (a group of >= 2 members) in the batch")
    if variant == "mean_log_prob":
        per_anchor = -(log_prob.masked_fill(~positive, 0.0).sum(dim=1) / counts)
    elif variant == "log_sum_prob":
        per_anchor = -torch.logsumexp(log_prob.masked_fill(~positive, float("-inf")), dim=1)
    else:
        raise ValueError(f"unknown variant {variant!r}")
    return per_anchor.mean()


def group_step_loss(
    reps: torch.Tensor, step: StepIndex, loss: MultiPositiveConfig, mining: HardNegativeConfig
) -> torch.Tensor:
    """Mean over the step's mini-batches of :func:`multi_positive_loss` (``mining`` does not apply).

    Shapes: reps (T, dim) in the step's text order; each mini-batch's groups are its own.
    """
    per_batch = [
        multi_positive_loss(reps[bounds], step.text_groups[bounds], temperature=loss.temperature, variant=loss.variant)
        for bounds in step.mini_batch_texts
    ]
    return torch.stack(per_batch).mean()
