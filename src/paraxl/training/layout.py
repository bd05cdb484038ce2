"""What one optimisation step embeds, and how its texts relate: the step layout.

A step holds K mini-batches of sampled groups. Every text to embed goes into one flat
list (the same on every process, since the sampler is deterministic); index tensors say
which texts are anchors, positives and explicit negatives, and which group each text
belongs to. Losses read embeddings through these indices, so the same code serves one
process or many (each process embeds a contiguous slice of the list).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from paraxl.data.records import TextGroup
from paraxl.data.sampler import draw_texts


@dataclass(frozen=True)
class StepLayout:
    texts: list[str]  # (T,) everything this step embeds, mini-batch by mini-batch
    text_groups: torch.Tensor  # (T,) group id of each text (explicit negatives get -1 - index: no group)
    mini_batch_texts: list[slice]  # the texts of each mini-batch
    anchors: torch.Tensor  # (n,) text indices; empty for multi-positive steps
    positives: torch.Tensor  # (n,) text indices, row-aligned with anchors
    pair_groups: torch.Tensor  # (n,) group id of each pair
    negatives: torch.Tensor  # (n, e) text indices of explicit negatives, -1 padding

    @property
    def pairs_per_mini_batch(self) -> int:
        return self.anchors.shape[0] // max(len(self.mini_batch_texts), 1)


def pair_layout(mini_batches: Sequence[Sequence[TextGroup]], rng: np.random.Generator, negatives: int) -> StepLayout:
    """Anchor + one positive drawn from each group, plus up to ``negatives`` of its explicit negatives."""
    texts: list[str] = []
    text_groups: list[int] = []
    bounds: list[slice] = []
    anchors: list[int] = []
    positives: list[int] = []
    pair_groups: list[int] = []
    negative_rows: list[list[int]] = []
    for batch in mini_batches:
        start = len(texts)
        drawn = [draw_texts(group, 2, rng) for group in batch]  # (anchor, positive) per group
        anchors += range(start, start + len(batch))
        positives += range(start + len(batch), start + 2 * len(batch))
        pair_groups += [group.group_id for group in batch]
        texts += [pair[0] for pair in drawn] + [pair[1] for pair in drawn]
        text_groups += [group.group_id for group in batch] * 2
        for group in batch:
            chosen = _choose(group.negatives, negatives, rng)
            negative_rows.append([len(texts) + i for i in range(len(chosen))] + [-1] * (negatives - len(chosen)))
            text_groups += [-1 - (len(texts) + i) for i in range(len(chosen))]  # unique: a negative has no group
            texts += chosen
        bounds.append(slice(start, len(texts)))
    return StepLayout(
        texts=texts,
        text_groups=torch.tensor(text_groups, dtype=torch.long),
        mini_batch_texts=bounds,
        anchors=torch.tensor(anchors, dtype=torch.long),
        positives=torch.tensor(positives, dtype=torch.long),
        pair_groups=torch.tensor(pair_groups, dtype=torch.long),
        negatives=torch.tensor(negative_rows, dtype=torch.long).reshape(len(anchors), negatives),
    )


def group_layout(
    mini_batches: Sequence[Sequence[TextGroup]], rng: np.random.Generator, members: int | None
) -> StepLayout:
    """``members`` texts drawn from each group (all when None): the multi-positive layout."""
    texts: list[str] = []
    text_groups: list[int] = []
    bounds: list[slice] = []
    for batch in mini_batches:
        start = len(texts)
        for group in batch:
            drawn = draw_texts(group, None if members is None else min(members, len(group.texts)), rng)
            texts += drawn
            text_groups += [group.group_id] * len(drawn)
        bounds.append(slice(start, len(texts)))
    empty = torch.empty(0, dtype=torch.long)
    return StepLayout(
        texts=texts,
        text_groups=torch.tensor(text_groups, dtype=torch.long),
        mini_batch_texts=bounds,
        anchors=empty,
        positives=empty,
        pair_groups=empty,
        negatives=empty.reshape(0, 0),
    )


def _choose(pool: Sequence[str], count: int, rng: np.random.Generator) -> list[str]:
    if count == 0 or not pool:
        return []
    picks = rng.choice(len(pool), size=min(count, len(pool)), replace=False)
    return [pool[int(i)] for i in picks]
