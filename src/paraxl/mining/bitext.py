"""Bitext mining between two corpora: the one function both ``paraxl mine`` and the BUCC task use.

Candidates come from ratio-margin scoring with k nearest neighbours in both directions and a
greedy 1-to-1 pass (:func:`paraxl.retrieval.ratio_margin_candidates`); a threshold,
when given, keeps the pairs whose margin is at least that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from paraxl.errors import InputError
from paraxl.modeling.protocol import Embedder
from paraxl.retrieval import KnnIndexType, ratio_margin_candidates


@dataclass(frozen=True)
class MinedPair:
    source_index: int
    target_index: int
    score: float  # ratio margin; > 1 means closer than the neighbourhoods' average


def mine_bitext(
    embedder: Embedder,
    source_texts: Sequence[str],
    target_texts: Sequence[str],
    k: int = 4,
    threshold: float | None = None,
    index_type: KnnIndexType = "auto",
) -> list[MinedPair]:
    """1-to-1 candidate translation pairs by ratio margin, best first (above ``threshold`` if given).

    ``index_type`` picks the nearest-neighbour search (``exact``, FAISS ``flat``, or ``auto`` by size).
    """
    if not source_texts or not target_texts:
        raise InputError("bitext mining needs at least one source and one target sentence")
    if k < 1:
        raise InputError(f"k must be >= 1, got {k}")
    mined = ratio_margin_candidates(
        embedder.embed(source_texts), embedder.embed(target_texts), k=k, index_type=index_type
    )
    return [
        MinedPair(int(i), int(j), float(score))
        for i, j, score in zip(mined.source_index, mined.target_index, mined.score, strict=True)
        if threshold is None or score >= threshold
    ]
