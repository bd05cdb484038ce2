"""What the training-data readers produce: sampling units, grouped by meaning.

Two words, two things: a **unit** (:class:`TextUnit`) is what the sampler draws, the texts of one
meaning that a reader found together (usually in one language); a **group** is every unit that
shares a ``group_id`` (the unit and its translations or duplicates). A :class:`ScoredPair` is the
unit of graded-similarity data (STS): two texts and how similar they are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class TextUnit:
    """A sampling unit: texts of one group id that mean the same thing, plus explicit non-paraphrases of them.

    ``group_id`` is the semantic identity: units that share it are translations or duplicates of
    each other, so they must never share a batch nor serve as each other's negatives. Texts are
    distinct and stripped; ``languages`` is parallel to ``texts`` (``""`` where unknown).
    ``negatives`` are explicit hard negatives (PAWS-X label-0 partners), in the unit's language(s).
    """

    group_id: int
    texts: tuple[str, ...]
    languages: tuple[str, ...]
    negatives: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(self.texts) < 2 or len(set(self.texts)) != len(self.texts):
            raise ValueError(f"a TextUnit needs at least two distinct texts, got {self.texts!r}")
        if len(self.languages) != len(self.texts):
            raise ValueError(f"{len(self.texts)} texts but {len(self.languages)} languages")


@dataclass(frozen=True)
class ScoredPair(TextUnit):
    """A sampling unit of graded similarity: ``texts`` (sentence1, sentence2) and their gold ``score``.

    Unlike a plain unit, the two texts need not mean the same thing: ``score`` (in [0, 1], 1 most
    similar) says how close they are. Only scored losses (``cosent``) read it; the config refuses the
    other kinds on scored data, whose layouts would take the pair for paraphrases. ``group_id`` is
    the pair's identity across languages (its translations share it, so the sampler keeps them in
    separate batches); ``negatives`` stays empty.
    """

    score: float = field(kw_only=True)

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.texts) != 2:
            raise ValueError(f"a ScoredPair holds two texts, got {len(self.texts)}")
        if not (math.isfinite(self.score) and 0.0 <= self.score <= 1.0):
            raise ValueError(f"a ScoredPair's score must lie in [0, 1], got {self.score!r}")
        if self.negatives:
            raise ValueError("a ScoredPair has no explicit negatives")


@dataclass
class TrainingData:
    """Units ready for a :class:`~paraxl.data.sampler.GroupBatchSampler`, and what was left out.

    ``units`` are all :class:`TextUnit` or (scored data) all :class:`ScoredPair`.

    ``skipped_rows``: malformed rows skipped under a ``skip`` policy (for line-aligned files, row
    positions dropped from every file; for PAWS-X, also rows with an untranslated sentence).
    ``dropped_units``: units with fewer than two distinct texts (e.g. a PAWS-X sentence1 whose only
    partners are label-0). ``duplicate_units``: units identical to an earlier one and merged into
    it (XNLI repeats each premise three times).
    """

    units: list[TextUnit]
    skipped_rows: int
    dropped_units: int
    sources: list[Path] = field(default_factory=list)
    duplicate_units: int = 0

    def group_ids(self) -> list[int]:
        """One group id per unit, in unit order: the sampler's input."""
        return [group.group_id for group in self.units]

    def summary(self) -> str:
        """One line for a log."""
        distinct = len(set(self.group_ids()))
        return (
            f"{len(self.units)} units in {distinct} groups from {len(self.sources)} file(s); "
            f"{self.skipped_rows} rows skipped, {self.dropped_units} units with < 2 texts dropped, "
            f"{self.duplicate_units} duplicate units merged"
        )
