"""What one optimisation step embeds, and how its texts relate: the step layout.

A step holds K mini-batches of sampled groups. Every text to embed goes into one flat
list (the same on every process, since the sampler is deterministic); index tensors say
which texts are anchors, positives and explicit negatives, and which group each text
belongs to. Losses read embeddings through these indices, so the same code serves one
process or many (each process embeds a contiguous slice of the list).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from paraxl.data.records import ScoredPair, TextUnit
from paraxl.data.sampler import draw_texts
from paraxl.losses.step import GroupSteps, ScoredPairSteps, StepNeeds


def _no_scores() -> torch.Tensor:
    return torch.empty(0, dtype=torch.float32)


@dataclass(frozen=True)
class StepLayout:
    texts: list[str]  # (T,) everything this step embeds, mini-batch by mini-batch
    text_groups: torch.Tensor  # (T,) group id of each text (explicit negatives get -1 - index: no group)
    mini_batch_texts: list[slice]  # the texts of each mini-batch
    anchors: torch.Tensor  # (n,) text indices; empty for multi-positive steps
    positives: torch.Tensor  # (n,) text indices, row-aligned with anchors
    pair_groups: torch.Tensor  # (n,) group id of each pair
    negatives: torch.Tensor  # (n, e) text indices of explicit negatives, -1 padding
    pair_scores: torch.Tensor = field(default_factory=_no_scores)  # (n,) gold score per pair; (0,) unless scored

    @property
    def pairs_per_mini_batch(self) -> int:
        return self.anchors.shape[0] // max(len(self.mini_batch_texts), 1)


@dataclass(frozen=True)
class TranslationPositives:
    """Cross-lingual pairs out of aligned data: with probability ``rate`` a pair's positive and its
    explicit negatives come from a translation of the anchor's unit (a unit of the same group in
    another language), instead of from the anchor's own unit.

    On PAWS-X that turns (en anchor, en paraphrase, en label-0 partner) into (en anchor, de
    paraphrase or translation, de label-0 partner): the cross-lingual pairs the evaluation scores,
    which monolingual units never show the model.
    """

    rate: float
    by_group: Mapping[int, Sequence[TextUnit]]  # group id -> its units, one per language

    @classmethod
    def of(cls, groups: Sequence[TextUnit], rate: float) -> TranslationPositives:
        by_group: defaultdict[int, list[TextUnit]] = defaultdict(list)
        for group in groups:
            by_group[group.group_id].append(group)
        return cls(rate, dict(by_group))

    @classmethod
    def at_rate(cls, groups: Sequence[TextUnit], rate: float) -> TranslationPositives | None:
        """The config's ``data.translation_positives``: None at rate 0, where draws stay as they were."""
        return cls.of(groups, rate) if rate > 0 else None

    def source(self, group: TextUnit, rng: np.random.Generator) -> TextUnit:
        """The unit to draw ``group``'s positive and negatives from (``group`` itself, or a translation)."""
        if self.rate <= 0.0 or rng.random() >= self.rate:
            return group
        others = [unit for unit in self.by_group.get(group.group_id, ()) if unit is not group]
        return others[int(rng.integers(len(others)))] if others else group


def step_layout(
    needs: StepNeeds,
    mini_batches: Sequence[Sequence[TextUnit]],
    rng: np.random.Generator,
    translations: TranslationPositives | None = None,
) -> StepLayout:
    """The layout a loss kind needs (see :func:`paraxl.losses.registry.step_needs`)."""
    if isinstance(needs, GroupSteps):
        return group_layout(mini_batches, rng, needs.members)
    if isinstance(needs, ScoredPairSteps):
        return scored_pair_layout(mini_batches)
    return pair_layout(mini_batches, rng, needs.explicit_negatives, translations)


def pair_layout(
    mini_batches: Sequence[Sequence[TextUnit]],
    rng: np.random.Generator,
    negatives: int,
    translations: TranslationPositives | None = None,
) -> StepLayout:
    """Anchor + one positive drawn from each group, plus up to ``negatives`` of its explicit negatives.

    With ``translations``, some positives and negatives come from a translation of the group (see
    :class:`TranslationPositives`); without it the draws are exactly those of earlier versions.
    """
    rows = _PairRows()
    negative_rows: list[list[int]] = []
    for batch in mini_batches:
        start = len(rows.texts)
        drawn: list[tuple[str, ...]] = []  # (anchor, positive) per group
        pools: list[Sequence[str]] = []  # where each group's explicit negatives come from
        for group in batch:
            source = group if translations is None else translations.source(group, rng)
            if source is group:
                drawn.append(draw_texts(group, 2, rng))
            else:
                anchor = draw_texts(group, 1, rng)[0]
                drawn.append((anchor, source.texts[int(rng.integers(len(source.texts)))]))
            pools.append(source.negatives)
        rows.add_pairs([group.group_id for group in batch], drawn)
        for pool in pools:
            chosen = _choose(pool, negatives, rng)
            negative_rows.append([len(rows.texts) + i for i in range(len(chosen))] + [-1] * (negatives - len(chosen)))
            rows.text_groups += [-1 - (len(rows.texts) + i) for i in range(len(chosen))]  # unique: no group
            rows.texts += chosen
        rows.bounds.append(slice(start, len(rows.texts)))
    return rows.layout(torch.tensor(negative_rows, dtype=torch.long).reshape(len(rows.anchors), negatives))


def group_layout(
    mini_batches: Sequence[Sequence[TextUnit]], rng: np.random.Generator, members: int | None
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


def scored_pair_layout(mini_batches: Sequence[Sequence[TextUnit]]) -> StepLayout:
    """Each unit's (sentence1, sentence2) as (anchor, positive), its gold score in ``pair_scores``.

    Every unit must be a :class:`ScoredPair`. Nothing is drawn (a pair is its two texts), and
    there are no explicit negatives: each mini-batch's pairs are ranked against each other. Both
    texts of a pair carry the pair's group id in ``text_groups`` (the row they come from; they are
    not paraphrases unless their score says so).
    """
    rows = _PairRows()
    scores: list[float] = []
    for batch in mini_batches:
        pairs = [_scored(unit) for unit in batch]
        start = len(rows.texts)
        rows.add_pairs([pair.group_id for pair in pairs], [pair.texts for pair in pairs])
        rows.bounds.append(slice(start, len(rows.texts)))
        scores += [pair.score for pair in pairs]
    no_negatives = torch.empty(len(rows.anchors), 0, dtype=torch.long)
    return rows.layout(no_negatives, torch.tensor(scores, dtype=torch.float32))


@dataclass
class _PairRows:
    """The lists of a pair layout (pair and scored-pair steps), grown mini-batch by mini-batch."""

    texts: list[str] = field(default_factory=list)
    text_groups: list[int] = field(default_factory=list)
    bounds: list[slice] = field(default_factory=list)
    anchors: list[int] = field(default_factory=list)
    positives: list[int] = field(default_factory=list)
    pair_groups: list[int] = field(default_factory=list)

    def add_pairs(self, group_ids: Sequence[int], drawn: Sequence[Sequence[str]]) -> None:
        """One mini-batch's (anchor, positive) pairs: its anchors, then its positives, under their group ids."""
        start, count = len(self.texts), len(drawn)
        self.anchors += range(start, start + count)
        self.positives += range(start + count, start + 2 * count)
        self.pair_groups += group_ids
        self.texts += [pair[0] for pair in drawn] + [pair[1] for pair in drawn]
        self.text_groups += [*group_ids] * 2

    def layout(self, negatives: torch.Tensor, pair_scores: torch.Tensor | None = None) -> StepLayout:
        """The step layout of these rows; ``negatives`` (n, e), ``pair_scores`` (n,) of scored pairs."""
        return StepLayout(
            texts=self.texts,
            text_groups=torch.tensor(self.text_groups, dtype=torch.long),
            mini_batch_texts=self.bounds,
            anchors=torch.tensor(self.anchors, dtype=torch.long),
            positives=torch.tensor(self.positives, dtype=torch.long),
            pair_groups=torch.tensor(self.pair_groups, dtype=torch.long),
            negatives=negatives,
            pair_scores=_no_scores() if pair_scores is None else pair_scores,
        )


def _scored(unit: TextUnit) -> ScoredPair:
    if not isinstance(unit, ScoredPair):
        raise ValueError(f"a scored-pair step needs ScoredPair units (data kind sts), got a {type(unit).__name__}")
    return unit


def _choose(pool: Sequence[str], count: int, rng: np.random.Generator) -> list[str]:
    if count == 0 or not pool:
        return []
    picks = rng.choice(len(pool), size=min(count, len(pool)), replace=False)
    return [pool[int(i)] for i in picks]
