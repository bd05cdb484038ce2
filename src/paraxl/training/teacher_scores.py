"""The pairs the trainer can draw from its units: what a teacher labels for ``distill``.

``distill`` (:mod:`paraxl.training.distillation`) reaches only the pairs a step draws: each
anchor with its positive and its explicit negatives. Those come from two places:

- **in-unit** (:func:`training_pairs`): every two texts of a unit (paraphrases) and every text with
  each of the unit's label-0 partners (non-paraphrases): what every pair-loss step draws;
- **translation** (:func:`translation_pairs`): with ``data.translation_positives`` (see
  :class:`paraxl.training.layout.TranslationPositives`), an anchor's positive and negatives come
  from another unit of its group: every text of a unit with every text (a paraphrase or a
  translation: same meaning) and every label-0 partner of each other unit of its group. On PAWS-X
  these are the cross-lingual pairs (an English sentence with a German paraphrase, translation or
  non-paraphrase) that the bi-encoder never had a score for: the silver pairs of AugSBERT (Thakur
  et al. 2021), which ``paraxl label`` scores with a cross-encoder.

Either set has each unordered pair once (the teacher file is read in either order). A file of
pairs the steps never draw would change nothing: translation pairs need ``translation_positives > 0``.
The gold labels of the in-unit pairs (1 / 0) are the control file of a distillation experiment.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from paraxl.data.records import TextUnit
from paraxl.io.atomic import atomic_path
from paraxl.training.distillation import COLUMNS

PairScope = Literal["in-unit", "translation", "all"]
PAIR_SCOPES: tuple[PairScope, ...] = ("in-unit", "translation", "all")
PAIRS_HEADER = ("sentence1", "sentence2", "languages", "gold")


@dataclass(frozen=True)
class DrawnPair:
    """A pair a step can draw: its texts, their languages (``"en-de"``; ``"en"`` for one) and the gold label."""

    first: str
    second: str
    languages: str
    gold: int  # 1: the same meaning (two texts of one group), 0: a label-0 partner


def drawn_pairs(units: Sequence[TextUnit], scope: PairScope) -> list[DrawnPair]:
    """The pairs of ``scope`` (in-unit ones first for ``all``), each unordered pair once."""
    sources: list[Iterator[DrawnPair]] = []
    if scope != "translation":
        sources.append(_in_unit(units))
    if scope != "in-unit":
        sources.append(_translations(units))
    seen: set[frozenset[str]] = set()
    pairs = []
    for pair in itertools.chain.from_iterable(sources):
        key = frozenset((pair.first, pair.second))
        if pair.first != pair.second and key not in seen:
            seen.add(key)
            pairs.append(pair)
    return pairs


def training_pairs(units: Sequence[TextUnit]) -> list[tuple[str, str]]:
    """Each in-unit pair (two texts; a text and a label-0 partner), once."""
    return [(pair.first, pair.second) for pair in drawn_pairs(units, "in-unit")]


def translation_pairs(units: Sequence[TextUnit]) -> list[DrawnPair]:
    """Each pair that ``data.translation_positives`` adds: a unit's text with another unit of its group, once."""
    return drawn_pairs(units, "translation")


def in_unit_keys(units: Sequence[TextUnit]) -> set[frozenset[str]]:
    """The in-unit pairs as unordered keys: a drawn pair outside this set is a translation pair."""
    return {frozenset((pair.first, pair.second)) for pair in drawn_pairs(units, "in-unit")}


def paraphrase_pairs(units: Sequence[TextUnit]) -> set[frozenset[str]]:
    """The pairs of two texts of one unit: the paraphrases among :func:`training_pairs`."""
    return {frozenset(pair) for unit in units for pair in itertools.combinations(unit.texts, 2)}


def _in_unit(units: Sequence[TextUnit]) -> Iterator[DrawnPair]:
    for unit in units:
        language = dict(zip(unit.texts, unit.languages, strict=True))
        for first, second in itertools.combinations(unit.texts, 2):
            yield DrawnPair(first, second, _languages(language[first], language[second]), 1)
        for first, second in itertools.product(unit.texts, unit.negatives):
            # a label-0 partner is in the unit's language (PAWS-X: one language per unit)
            yield DrawnPair(first, second, _languages(language[first], language[first]), 0)


def _translations(units: Sequence[TextUnit]) -> Iterator[DrawnPair]:
    """As :meth:`TranslationPositives.source` draws: any other unit of the group, its texts and its negatives."""
    by_group: defaultdict[int, list[TextUnit]] = defaultdict(list)
    for unit in units:
        by_group[unit.group_id].append(unit)
    for unit in units:
        for other in by_group[unit.group_id]:
            if other is unit:
                continue
            other_language = other.languages[0] if other.languages else ""
            for first, first_language in zip(unit.texts, unit.languages, strict=True):
                for second, second_language in zip(other.texts, other.languages, strict=True):
                    yield DrawnPair(first, second, _languages(first_language, second_language), 1)
                for second in other.negatives:
                    yield DrawnPair(first, second, _languages(first_language, other_language), 0)


def _languages(first: str, second: str) -> str:
    return first if first == second else f"{first}-{second}"


def write_pairs(output: Path, pairs: Sequence[DrawnPair], *, annotated: bool = True) -> None:
    """The pairs as a TSV, the input of ``paraxl label``, atomically: ``sentence1 / sentence2 / languages / gold``
    (``annotated`` False: the two sentences only)."""
    width = len(PAIRS_HEADER) if annotated else 2
    with atomic_path(output) as temporary, temporary.open("w", encoding="utf-8") as handle:
        handle.write("\t".join(PAIRS_HEADER[:width]) + "\n")
        for pair in pairs:
            handle.write("\t".join((pair.first, pair.second, pair.languages, str(pair.gold))[:width]) + "\n")


def write_gold_labels(output: Path, pairs: Sequence[tuple[str, str]], paraphrases: set[frozenset[str]]) -> None:
    """The pairs with score 1 (paraphrase) or 0, written atomically to ``output``."""
    with atomic_path(output) as temporary, temporary.open("w", encoding="utf-8") as handle:
        handle.write("\t".join(COLUMNS) + "\n")
        for first, second in pairs:
            handle.write(f"{first}\t{second}\t{float(frozenset((first, second)) in paraphrases):g}\n")
