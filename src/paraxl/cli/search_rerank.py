"""``paraxl search --rerank CE``: the cross-encoder re-scores the bi-encoder's hits (library:
:mod:`paraxl.decision.rerank`, shared with the service's ``/search``).

A reranked hit keeps both scores: ``score`` (the cosine, as without rerank) and ``cross_score``,
plus ``bi_rank`` (its rank by cosine); ``rank`` is its place in the cross-encoder's order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text

from paraxl.cli.common import errors, shown
from paraxl.errors import InputError
from paraxl.serving.index import SearchHit

if TYPE_CHECKING:
    from paraxl.decision.scorers import PairScorer
    from paraxl.loading.model import ResolvedModel

RERANK_COLUMNS = ("bi_rank", "cross_score")


@dataclass(frozen=True)
class RerankedHit(SearchHit):
    bi_rank: int  # 1-based, by cosine
    cross_score: float  # the cross-encoder's score of (query, text)


def rerank_depth(k: int, top_k: int | None) -> int:
    """The hits to search for and rerank: ``--rerank-top-k`` (default ``-k``), at least ``-k``."""
    from paraxl.decision.rerank import check_rerank_depth

    try:
        return check_rerank_depth(k, top_k)
    except InputError as exc:
        raise InputError(f"--rerank-top-k: {exc}") from None


def resolve_reranker(spec: str) -> ResolvedModel:
    """The cross-encoder ``spec`` on torch, refused in one line if it is a sentence embedder: a config check,
    made before the index and the bi-encoder load."""
    from paraxl.loading.model import resolve_model
    from paraxl.modeling.cross_encoder import is_cross_encoder

    model = resolve_model(spec, "torch")
    if not is_cross_encoder(model.folder):
        raise InputError(
            f"--rerank {spec} is not a cross-encoder (a sentence embedder: its folder has no sequence-classification "
            "head)"
        )
    return model


def open_reranker(model: ResolvedModel, batch_size: int) -> PairScorer:
    """The scorer of the cross-encoder ``model`` (from :func:`resolve_reranker`)."""
    from paraxl.decision.model_scorers import cross_encoder_scorer

    with errors.status(Text(f"loading the cross-encoder {shown(model.spec)}")):  # stderr: stdout may be data
        return cross_encoder_scorer(model, batch_size)


def rerank_results(
    queries: Sequence[str], results: Sequence[Sequence[SearchHit]], scorer: PairScorer, k: int
) -> list[list[SearchHit]]:
    """Each query's hits re-scored by ``scorer`` on (query, text), reordered, the best ``k`` kept."""
    from paraxl.decision.rerank import rerank_hits

    reranked = rerank_hits(queries, results, lambda hit: hit.text, scorer, keep=k)
    return [
        [
            RerankedHit(item.rank, item.hit.id, item.hit.text, item.hit.score, item.bi_rank, item.cross_score)
            for item in row
        ]
        for row in reranked
    ]


def rerank_fields(hit: SearchHit) -> dict[str, int | float]:
    """A reranked hit's extra fields (empty for a plain hit), in :data:`RERANK_COLUMNS` order."""
    if isinstance(hit, RerankedHit):
        return {"bi_rank": hit.bi_rank, "cross_score": round(hit.cross_score, 6)}
    return {}
