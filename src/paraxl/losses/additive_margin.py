"""Additive-margin softmax (Yang et al. 2019; LaBSE; paper 1) and its margin-0 case, InfoNCE.

For anchors ``a_i`` and their positives ``c_i`` (row-aligned), with cosine ``cos``:

    logit(a_i, c_j) = s * (cos(a_i, c_j) - m * [i == j])
    loss = CE(a -> [c, extra negatives]) + CE(c -> a)      (bidirectional)

Margin 0, one direction and ``scale = 1 / temperature`` is exactly InfoNCE /
MultipleNegativesRankingLoss.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from pydantic import Field

from paraxl.losses.step import LossSection

Direction = Literal["both", "forward"]


class MarginSoftmax(NamedTuple):
    """The parameters of :func:`additive_margin_loss` that a pair loss kind resolves to."""

    margin: float
    scale: float
    direction: Direction


class AdditiveMarginConfig(LossSection):
    """``loss: {kind: additive_margin}``: margin ``m`` on the positive, logit scale ``s``."""

    kind: Literal["additive_margin"] = "additive_margin"
    margin: float = Field(default=0.3, ge=0.0)
    scale: float = Field(default=20.0, gt=0.0)
    direction: Direction = "both"
    explicit_negatives: int = Field(default=1, ge=0)  # per anchor, from the data (PAWS-X label-0)

    def margin_softmax(self) -> MarginSoftmax:
        return MarginSoftmax(self.margin, self.scale, self.direction)


class InfoNCEConfig(LossSection):
    """``loss: {kind: info_nce}``: margin 0, one direction, ``scale = 1 / temperature``."""

    kind: Literal["info_nce"] = "info_nce"
    temperature: float = Field(default=0.05, gt=0.0)
    explicit_negatives: int = Field(default=1, ge=0)  # per anchor, from the data (PAWS-X label-0)

    def margin_softmax(self) -> MarginSoftmax:
        return MarginSoftmax(0.0, 1.0 / self.temperature, "forward")


def additive_margin_loss(
    anchors: torch.Tensor,
    positives: torch.Tensor,
    *,
    margin: float = 0.3,
    scale: float = 20.0,
    direction: Direction = "both",
    extra_negatives: torch.Tensor | None = None,
    groups: torch.Tensor | None = None,
) -> torch.Tensor:
    """Bidirectional additive-margin softmax over in-batch (and extra) negatives.

    Args:
        anchors: (n, dim) embeddings; normalised inside.
        positives: (n, dim); row i is anchor i's positive.
        margin: subtracted from the positive's cosine before scaling.
        scale: logit scale ``s`` (an inverse temperature).
        direction: ``"both"`` adds the positive->anchor cross-entropy (LaBSE), ``"forward"`` does not.
        extra_negatives: (n, k, dim) per-anchor negatives (e.g. PAWS-X label-0 partners or mined
            ones); rows that have fewer may be padded with NaN, which are ignored.
        groups: (n,) group ids; an in-batch item of the anchor's group other than its own
            positive (a duplicate, another translation) is not used as a negative.
    Returns:
        Scalar mean loss.
    """
    a = F.normalize(anchors, dim=-1)  # (n, dim)
    c = F.normalize(positives, dim=-1)  # (n, dim)
    n = a.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=a.device)
    cosine = a @ c.T  # (n, n): anchors x candidates
    logits = scale * (cosine - margin * eye.to(cosine.dtype))
    if groups is not None:
        same_group = (groups[:, None] == groups[None, :]) & ~eye  # (n, n)
        logits = logits.masked_fill(same_group, float("-inf"))
    forward_logits = logits
    if extra_negatives is not None:
        extra = _extra_logits(a, extra_negatives, scale)  # (n, k)
        forward_logits = torch.cat([logits, extra], dim=1)  # (n, n + k)
    targets = torch.arange(n, device=a.device)
    loss = F.cross_entropy(forward_logits, targets)
    if direction == "both":
        loss = loss + F.cross_entropy(logits.T, targets)  # candidates -> anchors, margin on the diagonal
    return loss


def _extra_logits(anchors: torch.Tensor, negatives: torch.Tensor, scale: float) -> torch.Tensor:
    """Shapes: anchors (n, dim), negatives (n, k, dim) -> (n, k) scaled cosines, -inf for NaN padding."""
    padded = torch.isnan(negatives).any(dim=-1)  # (n, k)
    unit = F.normalize(torch.nan_to_num(negatives), dim=-1)
    logits = scale * torch.einsum("nd,nkd->nk", anchors, unit)
    return logits.masked_fill(padded, float("-inf"))


def info_nce_loss(
    anchors: torch.Tensor,
    positives: torch.Tensor,
    *,
    temperature: float = 0.05,
    extra_negatives: torch.Tensor | None = None,
    groups: torch.Tensor | None = None,
) -> torch.Tensor:
    """InfoNCE / MultipleNegativesRankingLoss: anchor -> candidates only, no margin.

    ``temperature = 0.05`` is sentence-transformers' ``scale = 20``.
    """
    return additive_margin_loss(
        anchors,
        positives,
        margin=0.0,
        scale=1.0 / temperature,
        direction="forward",
        extra_negatives=extra_negatives,
        groups=groups,
    )
