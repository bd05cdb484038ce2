"""PAWS-style generated hard negatives: swap two words of a sentence.

PAWS built its non-paraphrases by swapping words (mostly entities) within a sentence, so that
both sentences have the same bag of words but a different meaning ("Flights from New York to
Florida" / "Flights from Florida to New York"). A bi-encoder trained with in-batch negatives never
sees such pairs, which is why it scores them as paraphrases. This module makes more of them from
any training sentence, as extra explicit negatives.

The swap is a heuristic, not a parser: it swaps two capitalised words that are not the first word
(names, places) when the sentence has two distinct ones, else two distinct longer words (4+
letters). Punctuation stays where it was. Scripts written without spaces (Japanese, Chinese) get
no swap: word boundaries there need a segmenter, and swapping arbitrary characters makes garbage,
an easy negative rather than a hard one.
"""

from __future__ import annotations

import zlib
from dataclasses import replace

import numpy as np

from paraxl.data.records import TextUnit, TrainingData

_MIN_WORDS = 4  # shorter sentences have too little to swap without wrecking them
_CONTENT_LETTERS = 4


def swap_words(text: str) -> str | None:
    """``text`` with two of its words swapped, or None when it has no two words worth swapping.

    Deterministic: the choice is seeded by the text itself, so every process and every run makes
    the same negative for the same sentence.
    """
    tokens = text.split(" ")
    if len(tokens) < _MIN_WORDS:
        return None
    cores = [_core(token) for token in tokens]
    capitalised = [i for i in range(1, len(tokens)) if cores[i][1][:1].isupper() and cores[i][1].isalpha()]
    content = [i for i in range(len(tokens)) if len(cores[i][1]) >= _CONTENT_LETTERS and cores[i][1].isalpha()]
    rng = np.random.default_rng(zlib.crc32(text.encode("utf-8")))
    for candidates in (capitalised, content):
        pair = _distinct_pair(candidates, [core for _, core, _ in cores], rng)
        if pair is not None:
            first, second = pair
            swapped = list(tokens)
            swapped[first] = cores[first][0] + cores[second][1] + cores[first][2]
            swapped[second] = cores[second][0] + cores[first][1] + cores[second][2]
            return " ".join(swapped)
    return None


def with_swap_negatives(data: TrainingData) -> TrainingData:
    """Every unit gets, as one more explicit negative, a word swap of its first text (when it has one).

    The first text is the unit's source sentence (PAWS-X sentence1, an XNLI premise); the swap keeps
    its words, so it is as hard a negative as PAWS's own label-0 pairs. A swap that happens to equal
    one of the unit's texts (a paraphrase that is itself a word swap) is not added.
    """
    groups: list[TextUnit] = []
    for group in data.units:
        swapped = swap_words(group.texts[0])
        if swapped is None or swapped in group.texts or swapped in group.negatives:
            groups.append(group)
        else:
            groups.append(replace(group, negatives=(*group.negatives, swapped)))
    return replace(data, units=groups)


def _core(token: str) -> tuple[str, str, str]:
    """(leading punctuation, word, trailing punctuation) of a whitespace token."""
    start, end = 0, len(token)
    while start < end and not token[start].isalnum():
        start += 1
    while end > start and not token[end - 1].isalnum():
        end -= 1
    return token[:start], token[start:end], token[end:]


def _distinct_pair(candidates: list[int], words: list[str], rng: np.random.Generator) -> tuple[int, int] | None:
    """Two positions from ``candidates`` holding different words (case-insensitive), chosen at random."""
    order = [candidates[int(i)] for i in rng.permutation(len(candidates))]
    for position, first in enumerate(order):
        for second in order[position + 1 :]:
            if words[first].lower() != words[second].lower():
                return (first, second) if first < second else (second, first)
    return None
