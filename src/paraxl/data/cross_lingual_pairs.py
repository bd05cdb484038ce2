"""Cross-lingual labelled pairs out of pair files aligned by ``id``: sentence1 in A, sentence2 in B.

PAWS-X's languages translate the same pairs, and the files share the ``id`` column (the resplit
assigns whole ids to train / validation / test identically in every language). The rows of one id
form an aligned **unit**; a translated pair keeps its gold label, so sentence1 of language A with
sentence2 of language B (A != B) is a labelled pair too. A cross-encoder trained on monolingual
pairs only has never seen such a pair, and is weak on them (RESULTS.md, issue 28).

An ordered cell (A, B) of a unit is usable when both rows carry the same label (a few derived
labels disagree across languages) and neither side used is the untranslated placeholder ``NS``;
these are the rules of the cross-lingual evaluation (``evaluation.pawsx_cross.cell_pairs``), which
this layer cannot import. Each unit gives ``pairs_per_unit`` of its usable cells, drawn without
replacement by a ``random.Random(seed)`` walked over the units in file order: the same rows and
seed give the same pairs. The input is the rows a reader already parsed (``read_pawsx_pairs``), so
no file is read twice, and the caller decides which split they come from.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from paraxl.data.pairs import LabeledPair
from paraxl.data.readers import cross_lingual_usable
from paraxl.errors import InputError

Cell = tuple[str, str]  # (sentence1 language, sentence2 language)


@dataclass(frozen=True)
class CrossLingualPairs:
    """The drawn pairs and how many there are per cell.

    ``rows``: ``first`` from language A's row, ``second`` from B's, their shared label and ``key``;
    ``language`` is ``"A-B"`` and ``path`` / ``line`` are those of A's row (where sentence1 came from).
    """

    rows: list[LabeledPair]
    cells: dict[str, int]  # pairs per "A-B"
    units: int  # ids present in at least two of the languages
    unusable: int  # ordered cells of those units left out (labels disagree, or NS on a side used)


def cell_name(cell: Cell) -> str:
    return f"{cell[0]}-{cell[1]}"


def aligned_units(pairs_by_language: Mapping[str, Sequence[LabeledPair]]) -> list[dict[str, LabeledPair]]:
    """The rows of each ``key`` across languages, keys in order of first appearance.

    A row without a key cannot be aligned and is left out; a key twice in one language is an
    InputError at its line (the alignment would be ambiguous).
    """
    units: dict[str, dict[str, LabeledPair]] = {}
    for language, rows in pairs_by_language.items():
        for pair in rows:
            if pair.key is None:
                continue
            unit = units.setdefault(pair.key, {})
            earlier = unit.setdefault(language, pair)
            if earlier is not pair:
                raise InputError(
                    f"id {pair.key!r} appears twice (also at line {earlier.line}); cannot align languages by id",
                    pair.path,
                    pair.line,
                )
    return list(units.values())


def usable_cells(unit: Mapping[str, LabeledPair], languages: Sequence[str]) -> tuple[list[Cell], int]:
    """The ordered cells (A, B) of one unit, in ``languages`` order, that give a labelled pair; and how many do not."""
    usable: list[Cell] = []
    unusable = 0
    present = [language for language in languages if language in unit]
    for a in present:
        for b in present:
            if a == b:
                continue
            first, second = unit[a], unit[b]
            if not cross_lingual_usable(first, second):
                unusable += 1
            else:
                usable.append((a, b))
    return usable, unusable


def cross_lingual_pairs(
    pairs_by_language: Mapping[str, Sequence[LabeledPair]],
    *,
    languages: Sequence[str],
    pairs_per_unit: int,
    seed: int,
) -> CrossLingualPairs:
    """``pairs_per_unit`` usable cross-lingual pairs of every aligned unit (all of them where it has fewer).

    ``languages``: the languages either side may come from (at least two, each one of ``pairs_by_language``).
    """
    if len(set(languages)) < 2:
        raise InputError(f"cross-lingual pairs need at least two distinct languages, got {list(languages)}")
    missing = [language for language in languages if language not in pairs_by_language]
    if missing:
        raise InputError(f"cross-lingual language(s) {missing} have no pairs read; read {list(pairs_by_language)}")
    if pairs_per_unit < 1:
        raise InputError(f"pairs_per_unit must be at least 1, got {pairs_per_unit}")
    rng = random.Random(seed)
    rows: list[LabeledPair] = []
    cells: dict[str, int] = {}
    units = unusable = 0
    for unit in aligned_units({language: pairs_by_language[language] for language in languages}):
        if len(unit) < 2:
            continue
        units += 1
        usable, left_out = usable_cells(unit, languages)
        unusable += left_out
        for a, b in rng.sample(usable, min(pairs_per_unit, len(usable))):
            first, second = unit[a], unit[b]
            name = cell_name((a, b))
            rows.append(LabeledPair(first.first, second.second, first.label, first.line, first.path, first.key, name))
            cells[name] = cells.get(name, 0) + 1
    return CrossLingualPairs(rows, cells, units, unusable)
