"""Retrieve and rerank: a cross-encoder re-scores a bi-encoder's search hits and reorders them.

The bi-encoder finds candidates fast (one embedding per query, a vector search); the cross-encoder
reads each ``(query, hit text)`` pair together, which is slower but more accurate, so it only
re-scores the first candidates of each query. :func:`rerank_hits` does that for any hit type
(``paraxl search``'s and the service's): every pair of every query goes to the scorer in one
``score`` call (one batching pass), each list is sorted by cross-encoder score, highest first, ties
keeping the bi-encoder's order (a stable sort), and each hit keeps its bi-encoder rank beside its new
one. The caller decides how many candidates to search (:func:`check_rerank_depth`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from paraxl.decision.scorers import Pair, PairScorer
from paraxl.errors import InputError, ModelFormatError

Hit = TypeVar("Hit")


@dataclass(frozen=True)
class Reranked(Generic[Hit]):
    """One hit after reranking: its new 1-based ``rank``, its rank in the bi-encoder's list and the
    cross-encoder's score of ``(query, hit text)``. ``hit`` is the caller's object, unchanged."""

    hit: Hit
    rank: int
    bi_rank: int
    cross_score: float


def check_rerank_depth(k: int, depth: int | None) -> int:
    """The number of bi-encoder hits to rerank: ``depth``, or ``k`` when None; at least ``k``, since
    the hits returned are the best ``k`` of those the cross-encoder scored."""
    chosen = k if depth is None else depth
    if isinstance(chosen, bool) or not isinstance(chosen, int) or chosen < k:
        raise InputError(
            f"the rerank depth must be an integer of at least k ({k}), got {depth!r}: "
            "the hits returned are the best k of the reranked ones"
        )
    return chosen


def rerank_hits(
    queries: Sequence[str],
    hits: Sequence[Sequence[Hit]],
    text_of: Callable[[Hit], str | None],
    scorer: PairScorer,
    keep: int | None = None,
) -> list[list[Reranked[Hit]]]:
    """Per query, its hits (bi-encoder order) re-scored by ``scorer`` and sorted by that score.

    Args:
        queries: (q,) the query texts.
        hits: (q,) lists of hits, best first as the bi-encoder ranked them.
        text_of: a hit's text; None (an index that keeps no texts) raises :class:`InputError`.
        scorer: the cross-encoder (any :class:`PairScorer`; higher = more relevant); a wrong number of
            scores, or a non-finite one, raises :class:`ModelFormatError`.
        keep: how many reranked hits to return per query (None: all).
    """
    if len(queries) != len(hits):
        raise InputError(f"{len(queries)} queries but {len(hits)} hit lists")
    pairs: list[Pair] = []
    for number, (query, row) in enumerate(zip(queries, hits, strict=True)):
        for position, hit in enumerate(row):
            text = text_of(hit)
            if text is None:
                raise InputError(
                    f"hit {position + 1} of query {number + 1} has no stored text, so the cross-encoder "
                    "cannot read it; rebuild the index with its texts to rerank"
                )
            pairs.append((query, text))
    scores = np.asarray(scorer.score(pairs), dtype=np.float64).reshape(-1)  # (sum of hits,)
    if scores.shape != (len(pairs),) or not np.isfinite(scores).all():  # the model's fault, not the input's
        raise ModelFormatError(
            f"the cross-encoder gave {scores.size} scores for {len(pairs)} pairs, or non-finite ones"
        )
    out: list[list[Reranked[Hit]]] = []
    offset = 0
    for row in hits:
        row_scores = scores[offset : offset + len(row)]  # (hits of this query,)
        offset += len(row)
        order = np.argsort(-row_scores, kind="stable")[:keep]  # stable: ties keep the bi-encoder's order
        out.append(
            [
                Reranked(row[int(position)], rank, int(position) + 1, float(row_scores[position]))
                for rank, position in enumerate(order, start=1)
            ]
        )
    return out
