"""CoSENT: a graded-similarity loss on scored pairs (Su 2022; sentence-transformers' ``CoSENTLoss``).

A step holds pairs (sentence1, sentence2) with gold similarities (STS scores scaled to [0, 1]).
The loss asks only that the model's similarities order the pairs as the gold scores do, across
every pair of the mini-batch: for pairs i, j with gold_i > gold_j, a term scale x (s_j - s_i), and

    loss = log(1 + sum over those (i, j) of exp(scale (s_j - s_i)))

(the "1 +" is the zero in a logsumexp). ``similarity: cosine`` is ``CoSENTLoss``; ``angle`` is
sentence-transformers' ``AnglELoss`` (Li & Li 2023, arXiv 2309.12871), CoSENT on the absolute
"angle similarity" |cos + sin|, whose gradient does not vanish where cosines saturate near 1.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from paraxl.losses.distillation import cosent_loss
from paraxl.losses.hard_negatives import HardNegativeConfig
from paraxl.losses.step import LossSection, StepIndex

Similarity = Literal["cosine", "angle"]


class CosentConfig(LossSection):
    """``loss: {kind: cosent}``: order each mini-batch's scored pairs as their gold scores do.

    Needs scored pairs (``data: {kind: sts}``); takes no explicit or mined negatives.
    """

    kind: Literal["cosent"] = "cosent"
    scale: float = Field(default=20.0, gt=0.0)  # multiplies the similarity differences (sentence-transformers: 20)
    similarity: Similarity = "cosine"  # angle: AnglELoss


def pair_similarity(first: torch.Tensor, second: torch.Tensor, similarity: Similarity = "cosine") -> torch.Tensor:
    """Row-wise similarity of two (n, dim) tensors: (n,).

    ``angle``: after L2 normalisation, |cos + sin| where sin pairs dimension i with i + dim/2
    (the real and imaginary halves of a complex vector; an odd dim gets one zero padding), as
    ``sentence_transformers.util.pairwise_angle_sim``.
    """
    first, second = F.normalize(first, dim=-1), F.normalize(second, dim=-1)  # (n, dim) each
    cosines = (first * second).sum(dim=-1)  # (n,)
    if similarity == "cosine":
        return cosines
    if first.shape[-1] % 2:
        first, second = F.pad(first, (0, 1)), F.pad(second, (0, 1))  # (n, dim + 1)
    first_re, first_im = first.chunk(2, dim=-1)  # (n, dim / 2) each
    second_re, second_im = second.chunk(2, dim=-1)
    sines = (first_im * second_re - first_re * second_im).sum(dim=-1)  # (n,)
    return (cosines + sines).abs()


def scored_pair_loss(
    first: torch.Tensor,
    second: torch.Tensor,
    scores: torch.Tensor,
    *,
    scale: float = 20.0,
    similarity: Similarity = "cosine",
) -> torch.Tensor:
    """CoSENT of one batch of scored pairs.

    Args:
        first, second: (n, dim) embeddings of each pair's sentences (normalised inside).
        scores: (n,) gold similarities; only their order counts.
        scale: multiplies the similarity differences.
        similarity: ``cosine`` (CoSENTLoss) or ``angle`` (AnglELoss).
    Returns:
        A scalar; 0 (still part of the graph) when no two pairs differ in gold score.
    Example:
        >>> first, second = torch.eye(2), torch.tensor([[1.0, 0.0], [1.0, 0.0]])
        >>> float(scored_pair_loss(first, second, torch.tensor([1.0, 0.0]))) < 1e-8  # right order
        True
    """
    similarities = pair_similarity(first, second, similarity)  # (n,)
    return cosent_loss(similarities, scores.to(similarities.device), scale)


def scored_pair_step_loss(
    reps: torch.Tensor, step: StepIndex, loss: CosentConfig, mining: HardNegativeConfig
) -> torch.Tensor:
    """Mean over the step's mini-batches of :func:`scored_pair_loss` (``mining`` does not apply).

    Each mini-batch orders its own pairs (as sentence-transformers does per batch), so K
    mini-batches per step are K batches' gradients averaged. Shapes: reps (T, dim) in the
    step's text order; the step's anchors / positives (n,) are each pair's two sentences and
    ``pair_scores`` (n,) its gold score.
    """
    if step.pair_scores.shape != step.anchors.shape or not step.anchors.numel():
        raise ValueError(
            f"loss kind cosent needs a gold score per pair: {step.anchors.shape[0]} pairs, "
            f"{step.pair_scores.shape[0]} scores (the step was not laid out from scored pairs)"
        )
    size = step.pairs_per_mini_batch
    per_batch = []
    for start in range(0, step.anchors.shape[0], size):
        rows = slice(start, start + size)
        first, second = reps[step.anchors[rows]], reps[step.positives[rows]]  # (size, dim) each
        per_batch.append(
            scored_pair_loss(first, second, step.pair_scores[rows], scale=loss.scale, similarity=loss.similarity)
        )
    return torch.stack(per_batch).mean()
