"""Distillation losses: a teacher's pair scores as targets for the student's cosines.

AugSBERT-style (Thakur et al. 2021): a teacher (typically a cross-encoder) scored sentence pairs
offline (see :mod:`paraxl.training.distillation`, which reads its scores into per-step targets);
every (anchor, positive) and (anchor, explicit negative) pair of a step with a score gets it as
the target of the student's cosine. Two losses (``distill.loss``):

- ``mse``: the squared error between cosine and score. It asks for the teacher's scale too: a
  cross-encoder's probabilities (0-1) against e5's cosines (0.7-1.0) pull every cosine down.
- ``cosent``: CoSENT (Su 2022) with the teacher's scores as the order, log(1 + sum over scored
  pairs i, j with score_i < score_j of exp(scale (cos_i - cos_j))). Only the order counts, and it
  is taken across all anchors of the step, which is what one global decision threshold needs
  (the contrastive loss only orders each anchor's own candidates).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from paraxl.losses.step import StepIndex

DistillLoss = Literal["mse", "cosent"]


def candidate_columns(step: StepIndex) -> torch.Tensor:
    """(n, 1 + e) text indices of each anchor's positive, then its explicit negatives (-1 padding)."""
    return torch.cat([step.positives[:, None], step.negatives], dim=1)


def distillation_loss(
    reps: torch.Tensor,
    step: StepIndex,
    targets: torch.Tensor,
    kind: DistillLoss = "mse",
    scale: float = 20.0,
) -> torch.Tensor:
    """The student's cosines of the scored pairs against the teacher's scores (see the module doc).

    Shapes: reps (T, dim) embeddings of the step's texts; targets (n, 1 + e) teacher scores of
    :func:`candidate_columns`, NaN where unscored. A step with no scored pair (``cosent``: no two
    scored pairs in order) gives 0, still part of the graph.
    """
    anchors = F.normalize(reps[step.anchors], dim=-1)  # (n, dim)
    columns = candidate_columns(step)  # (n, 1 + e), -1 padding
    candidates = F.normalize(reps[columns.clamp(min=0)], dim=-1)  # (n, 1 + e, dim)
    cosines = (anchors[:, None, :] * candidates).sum(dim=-1)  # (n, 1 + e)
    targets = targets.to(cosines.device)
    scored = ~torch.isnan(targets)
    if not bool(scored.any()):
        return reps.sum() * 0.0
    if kind == "mse":
        return ((cosines[scored] - targets[scored]) ** 2).mean()
    return cosent_loss(cosines[scored], targets[scored], scale)


def cosent_loss(cosines: torch.Tensor, scores: torch.Tensor, scale: float) -> torch.Tensor:
    """log(1 + sum over (i, j) with scores_i < scores_j of exp(scale (cos_i - cos_j))); shapes (m,)."""
    differences = scale * (cosines[:, None] - cosines[None, :])  # (m, m): [i, j] = scale (cos_i - cos_j)
    out_of_order = scores[:, None] < scores[None, :]  # (m, m): the pairs whose order the loss enforces
    terms = differences[out_of_order]  # (pairs,)
    zero = cosines.new_zeros(1)  # the "1 +": log(exp(0) + ...), and 0 when no pair is ordered
    return torch.logsumexp(torch.cat([zero, terms]), dim=0)
