"""What a step loss reads of a step, and what a loss kind needs a step to hold.

A training step embeds one flat list of texts (T of them); index tensors say which texts are
anchors, positives and explicit negatives and which group each belongs to. The trainer builds
that layout (:class:`paraxl.training.layout.StepLayout`) from data units; losses only read it,
through :class:`StepIndex`, so this layer never imports the data or training layers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from pydantic import BaseModel, ConfigDict


class StepIndex(Protocol):
    """The index tensors of a step's layout; embeddings ``reps`` (T, dim) are in text order."""

    @property
    def text_groups(self) -> torch.Tensor: ...  # (T,) group id of each text (negatives: unique ids < 0)

    @property
    def mini_batch_texts(self) -> list[slice]: ...  # the texts of each mini-batch

    @property
    def anchors(self) -> torch.Tensor: ...  # (n,) text indices; empty for group steps

    @property
    def positives(self) -> torch.Tensor: ...  # (n,) text indices, row-aligned with anchors

    @property
    def pair_groups(self) -> torch.Tensor: ...  # (n,) group id of each pair

    @property
    def negatives(self) -> torch.Tensor: ...  # (n, e) text indices of explicit negatives, -1 padding

    @property
    def pair_scores(self) -> torch.Tensor: ...  # (n,) gold similarity of each pair in [0, 1]; empty if unscored

    @property
    def pairs_per_mini_batch(self) -> int: ...


@dataclass(frozen=True)
class PairSteps:
    """A step of (anchor, positive) pairs, one per group, each with up to ``explicit_negatives``
    explicit negatives (PAWS-X label-0 partners) from the data."""

    explicit_negatives: int


@dataclass(frozen=True)
class GroupSteps:
    """A step of groups, ``members`` texts drawn from each (None: every text of the group)."""

    members: int | None


@dataclass(frozen=True)
class ScoredPairSteps:
    """A step of scored pairs (sentence1, sentence2, gold similarity): one pair per unit, no
    explicit negatives; the gold scores are the layout's ``pair_scores``."""


StepNeeds = PairSteps | GroupSteps | ScoredPairSteps

# Every section of the training config: frozen, unknown keys refused, and numbers finite (a
# `.inf` or `.nan` from YAML or an override is refused where it is written, with its line,
# not deep in the trainer as an OverflowError or a NaN loss).
SECTION_CONFIG = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class LossSection(BaseModel):
    """A loss kind's ``loss:`` section of the training config: frozen, unknown keys refused.

    Every field has a default, so ``loss: {kind: <name>}`` alone is a valid section.
    """

    model_config = SECTION_CONFIG

    kind: str
