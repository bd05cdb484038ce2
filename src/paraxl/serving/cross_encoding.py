"""The service's cross-encoder: a cascade/fusion rule on ``/paraphrase`` and reranking on ``/search``.

Like the bi-encoder's forward passes (:mod:`paraxl.serving.encoder_queue`), the cross-encoder's run
in the request's worker thread (the endpoints hand their work to the thread pool, never to the
event loop) and one at a time (:class:`SerialPairScorer`): a forward pass already spreads over every
core, so concurrent ones only contend. A request that cannot get the cross-encoder within the
queue's ``max_wait`` seconds is refused with :class:`~paraxl.serving.encoder_queue.Overloaded` (429),
as a request that waits too long for the encoder is. Every call is reported to a
:class:`PairObserver` (the Prometheus metrics): pairs scored and seconds, by purpose.

No web framework here: answers are plain dicts, refusals :class:`ServiceError`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from paraxl.decision.cascade import CascadeRule
from paraxl.decision.decider import Decider
from paraxl.decision.fusion import FusionRule
from paraxl.decision.rerank import Reranked, check_rerank_depth, rerank_hits
from paraxl.decision.rule_decider import RuleDecisions
from paraxl.decision.scorers import Pair, PairScorer
from paraxl.errors import InputError
from paraxl.serving.encoder_queue import Overloaded, ServiceError

FloatArray = npt.NDArray[np.float64]
PARAPHRASE, RERANK = "paraphrase", "rerank"
NOT_CONFIGURED = 409
INVALID = 422


class PairObserver(Protocol):
    """What the metrics hear of pair decisions and cross-encoder calls."""

    def pairs_decided(self, decided_by: str, pairs: int) -> None:
        """``pairs`` pairs of one /paraphrase request were decided by ``decided_by`` (bi, cross, fusion)."""

    def cross_scored(self, purpose: str, pairs: int, seconds: float) -> None:
        """One cross-encoder call (``purpose``: paraphrase or rerank) scored ``pairs`` pairs in ``seconds``."""

    def refused(self, reason: str) -> None:
        """A request answered 429 (here: ``cross_encoder_wait``)."""


class SerialPairScorer:
    """A cross-encoder shared by every request thread: one ``score`` call at a time, each reported.

    Args:
        scorer: the cross-encoder's :class:`PairScorer` (sigmoid scores).
        model: its spec, for ``/health``; fingerprint: its weights fingerprint.
        max_wait: seconds a caller may wait for the model before it is refused (429).
    """

    def __init__(self, scorer: PairScorer, model: str, fingerprint: str, max_wait: float) -> None:
        self.scorer = scorer
        self.model = model
        self.fingerprint = fingerprint
        self.max_wait = max_wait
        self.observer: PairObserver | None = None
        self._lock = threading.Lock()

    def score(self, pairs: Sequence[Pair], purpose: str = PARAPHRASE) -> FloatArray:
        """(n,) scores of ``pairs``, computed while holding the model; :class:`Overloaded` past ``max_wait``."""
        if not pairs:
            return np.zeros(0, dtype=np.float64)
        if not self._lock.acquire(timeout=self.max_wait):
            if self.observer is not None:
                self.observer.refused("cross_encoder_wait")
            raise Overloaded(f"server busy: the request waited {self.max_wait:g} s for the cross-encoder", 1)
        try:
            start = time.perf_counter()
            scores = np.asarray(self.scorer.score(pairs), dtype=np.float64).reshape(-1)
            seconds = time.perf_counter() - start
        finally:
            self._lock.release()
        if self.observer is not None:
            self.observer.cross_scored(purpose, len(pairs), seconds)
        return scores

    def for_purpose(self, purpose: str) -> PairScorer:
        """This scorer as a plain :class:`PairScorer` whose calls are reported under ``purpose``."""
        return _Purposed(self, purpose)

    def summary(self) -> dict[str, str]:
        return {"model": self.model, "fingerprint": self.fingerprint}


@dataclass(frozen=True)
class _Purposed:
    serial: SerialPairScorer
    purpose: str

    def score(self, pairs: Sequence[Pair]) -> FloatArray:
        return self.serial.score(pairs, self.purpose)


@dataclass(frozen=True)
class FunctionScorer:
    """A :class:`PairScorer` from a function of the pairs (the service's queued bi-encoder cosines)."""

    function: Callable[[Sequence[Pair]], npt.ArrayLike]

    def score(self, pairs: Sequence[Pair]) -> FloatArray:
        return np.asarray(self.function(pairs), dtype=np.float64).reshape(-1)


@dataclass(frozen=True)
class PairRule:
    """A cascade or fusion deciding ``/paraphrase``: the rule, the prompt its cosines were fitted with
    (None: the model's default; "" none) and the cross-encoder, checked against the rule file at start-up."""

    rule: CascadeRule | FusionRule
    prompt_name: str | None
    cross: SerialPairScorer

    @property
    def kind(self) -> str:
        return "cascade" if isinstance(self.rule, CascadeRule) else "fusion"


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def rule_results(decisions: RuleDecisions, observer: PairObserver | None) -> list[dict[str, object]]:
    """``/paraphrase``'s results for a rule's decisions (scores that were not computed are null)."""
    if observer is not None:
        for who in sorted(set(decisions.decided_by)):
            observer.pairs_decided(who, decisions.decided_by.count(who))
    return [
        {
            "score": float(decisions.scores[i]),
            "probability": _finite(decisions.probabilities[i]),
            "is_paraphrase": bool(decisions.labels[i]),
            "threshold": float(decisions.thresholds[i]),
            "decided_by": decisions.decided_by[i],
            "bi_score": float(decisions.cosines[i]),
            "cross_score": _finite(decisions.cross_scores[i]),
        }
        for i in range(len(decisions.decided_by))
    ]


def decider_summary(decider: Decider | None) -> dict[str, object] | None:
    """``/health``'s ``calibration``: how the decider decides and at which threshold (None: it has none)."""
    if decider is None:
        return None
    return {"method": decider.method, "threshold": float(decider.threshold)}


def decider_results(
    decider: Decider, scores: np.ndarray, decided_by: str, observer: PairObserver | None
) -> list[dict[str, object]]:
    """``/paraphrase``'s results when one model decides every pair: ``scores`` (n,) are its cosines
    (``decided_by`` ``bi``) or its sigmoid scores (``cross``), decided at ``decider``'s threshold."""
    probabilities = np.asarray(decider.probability(scores), dtype=np.float64)
    decisions = np.asarray(decider.decide(scores), dtype=bool)
    threshold = float(decider.threshold)
    if observer is not None:
        observer.pairs_decided(decided_by, len(decisions))
    return [
        {
            "score": float(score),
            "probability": _finite(p),
            "is_paraphrase": bool(decided),
            "threshold": threshold,
            "decided_by": decided_by,
            "bi_score": float(score) if decided_by == "bi" else None,
            "cross_score": float(score) if decided_by == "cross" else None,
        }
        for score, p, decided in zip(scores, probabilities, decisions, strict=True)
    ]


class HitLike(Protocol):
    """A search hit as the reranker reads it (``paraxl.serving.index.SearchHit``)."""

    @property
    def id(self) -> str: ...

    @property
    def text(self) -> str | None: ...

    @property
    def score(self) -> float: ...


def reranked_results(
    queries: Sequence[str], hits: Sequence[Sequence[HitLike]], reranker: SerialPairScorer, k: int
) -> list[list[dict[str, object]]]:
    """``/search``'s results: each query's hits re-scored by the cross-encoder, the best ``k`` kept."""
    try:
        reranked = rerank_hits(queries, hits, lambda hit: hit.text, reranker.for_purpose(RERANK), keep=k)
    except InputError as exc:  # hits without texts (the index keeps none): the server's configuration
        raise ServiceError(NOT_CONFIGURED, str(exc)) from None
    return [[_reranked_hit(item) for item in row] for row in reranked]


def _reranked_hit(item: Reranked[HitLike]) -> dict[str, object]:
    hit = item.hit
    return {
        "rank": item.rank,
        "id": str(hit.id),
        "text": hit.text,
        "score": float(hit.score),
        "bi_rank": item.bi_rank,
        "cross_score": item.cross_score,
    }


def rerank_texts(
    query: str, texts: Sequence[str], reranker: SerialPairScorer, return_text: bool
) -> list[dict[str, object]]:
    """``/rerank``'s answer (Hugging Face TEI's shape): every text's ``index`` in ``texts`` and the
    cross-encoder's ``score`` of ``(query, text)``, best first (ties keep the input order), with the
    ``text`` itself when ``return_text``."""
    order = list(range(len(texts)))
    ranked = rerank_hits([query], [order], lambda i: texts[i], reranker.for_purpose(RERANK))[0]
    return [
        {"index": item.hit, "score": item.cross_score} | ({"text": texts[item.hit]} if return_text else {})
        for item in ranked
    ]


def rerank_depth(k: int, rerank: bool, top_k: int | None, reranker: SerialPairScorer | None, max_k: int) -> int:
    """How many hits ``/search`` asks the index for: ``k``, or the rerank depth ``top_k`` (default ``k``).

    :class:`ServiceError` 409 for ``rerank`` on a server without a cross-encoder, 422 for a depth below
    ``k`` or over ``max_k``, or a ``top_k`` without ``rerank``.
    """
    if not isinstance(rerank, bool):
        raise ServiceError(INVALID, f"rerank must be true or false, got {rerank!r}")
    if not rerank:
        if top_k is not None:
            raise ServiceError(INVALID, "rerank_top_k goes with rerank: true")
        return k
    if reranker is None:
        raise ServiceError(
            NOT_CONFIGURED, "this server has no cross-encoder to rerank with; restart it with --rerank CROSS_ENCODER"
        )
    try:
        depth = check_rerank_depth(k, top_k)
    except InputError as exc:
        raise ServiceError(INVALID, f"rerank_top_k: {exc}") from None
    if depth > max_k:
        raise ServiceError(INVALID, f"rerank_top_k must be at most {max_k}, got {depth}")
    return depth
