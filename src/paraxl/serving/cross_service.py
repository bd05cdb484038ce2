"""The service behind ``paraxl serve CROSS_ENCODER``: a cross-encoder served alone, for pairs.

A cross-encoder reads both texts of a pair together and gives one score (the sigmoid of its logit):
more accurate than a bi-encoder's cosine on paraphrase identification, but it gives no sentence
vectors. So this service answers ``/similarity`` (the cross-encoder's scores), ``/paraphrase``
(decided on them by the cross-encoder's calibration or ``--threshold``) and ``/rerank`` (a query's
texts by score, Hugging Face TEI's route), and every route that needs
embeddings (``/embed``, ``/v1/embeddings``, ``/search``) with a 409 that says so. Serve a bi-encoder
with ``--cascade`` or ``--rerank`` for both at once (:mod:`paraxl.serving.service`).

Like the bi-encoder's service it validates every request with the same checks
(:mod:`paraxl.serving.request_checks`) and runs the model one call at a time, refusing a request
that waits longer than ``max_wait`` for it with a 429 (:class:`~paraxl.serving.cross_encoding.SerialPairScorer`).
There is no encoder queue to merge requests: each request is one ``predict`` call over its pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NoReturn

import numpy as np

from paraxl.decision.decider import Decider
from paraxl.serving.cross_encoding import (
    PARAPHRASE,
    PairObserver,
    SerialPairScorer,
    decider_results,
    decider_summary,
    rerank_texts,
)
from paraxl.serving.encoder_queue import SerialEncoder, ServiceError
from paraxl.serving.limits import ServiceLimits
from paraxl.serving.request_checks import RequestChecks
from paraxl.serving.service import ParaxlService

NOT_CONFIGURED = 409


class CrossEncoderService:
    """``/similarity`` and ``/paraphrase`` from one cross-encoder; the embedding routes answer 409.

    Args:
        cross: the cross-encoder, shared by every request thread (one call at a time, 429 past its wait).
        model_name: the spec it was started with; decider: its calibration or ``--threshold`` on its
            scores (None: ``/paraphrase`` answers 409); max_seq_length: tokens per pair it reads.
    """

    embeds = False  # no sentence vectors: /embed, /v1/embeddings and /search answer 409
    queue: SerialEncoder | None = None  # no encoder queue (the cross-encoder's own wait refuses instead)
    dimension: int | None = None
    searcher = None
    rule = None
    reranker = None

    def __init__(
        self,
        cross: SerialPairScorer,
        *,
        model_name: str,
        decider: Decider | None = None,
        limits: ServiceLimits | None = None,
        backend: str | None = None,
        version: str | None = None,
        max_seq_length: int = 512,
    ) -> None:
        self.cross = cross
        self.model_name = model_name
        self.decider = decider
        self.limits = limits if limits is not None else ServiceLimits()
        self.checks = RequestChecks(self.limits)
        self.backend = backend
        self.version = version
        self.fingerprint = cross.fingerprint
        self.max_seq_length = max_seq_length

    @property
    def pair_observer(self) -> PairObserver | None:
        return self.cross.observer

    @pair_observer.setter
    def pair_observer(self, observer: PairObserver | None) -> None:
        self.cross.observer = observer

    @property
    def decision_method(self) -> str:
        return self.decider.method if self.decider is not None else ""

    def health(self) -> dict[str, object]:
        return {
            "status": "ok",
            "version": self.version,
            "model": self.model_name,
            "kind": "cross_encoder",
            "backend": self.backend,
            "fingerprint": self.fingerprint,
            "dimension": None,
            "max_seq_length": self.max_seq_length,
            "prompts": [],  # a cross-encoder reads the raw pair
            "default_prompt_name": None,
            "calibration": decider_summary(self.decider),
            "rule": None,
            "index": None,
            "rerank": None,
            "limits": self.limits.as_dict(),
        }

    def similarity(self, pairs: Sequence[Sequence[str]]) -> list[float]:
        """The cross-encoder's score of each (first, second) pair, in [0, 1]."""
        return [float(score) for score in self._scores(pairs)]

    def paraphrase(self, pairs: Sequence[Sequence[str]]) -> list[dict[str, object]]:
        """Per pair: the cross-encoder's ``score``, its calibrated ``probability`` (None at a bare threshold),
        ``is_paraphrase``, the ``threshold``, ``decided_by`` ``cross`` and ``cross_score`` (``bi_score`` null)."""
        if self.decider is None:
            raise ServiceError(
                NOT_CONFIGURED,
                f"model {self.model_name} has no calibration, so this server cannot decide paraphrases; "
                "calibrate it (paraxl calibrate), or restart the server with --threshold T",
            )
        return decider_results(self.decider, self._scores(pairs), "cross", self.pair_observer)

    def rerank(self, query: str, texts: Sequence[str], *, return_text: bool = False) -> list[dict[str, object]]:
        """The cross-encoder's score of ``(query, text)`` for every text, best first (TEI's /rerank)."""
        checked_query, checked = self.checks.text(query, "query"), self.checks.texts(texts, "texts")
        return rerank_texts(checked_query, checked, self.cross, return_text)

    def embed(self, texts: Sequence[str], prompt_name: str | None = None) -> NoReturn:
        self._no_embeddings()

    def embed_with_usage(self, texts: Sequence[str], prompt_name: str | None = None) -> NoReturn:
        self._no_embeddings()

    def count_tokens(self, texts: Sequence[str], prompt_name: str | None = None) -> NoReturn:
        self._no_embeddings()

    def search(
        self,
        queries: Sequence[str],
        k: int | None = None,
        prompt_name: str | None = None,
        *,
        rerank: bool = False,
        rerank_top_k: int | None = None,
    ) -> NoReturn:
        self._no_embeddings()

    def _scores(self, pairs: Sequence[Sequence[str]]) -> np.ndarray:
        first, second = self.checks.pairs(pairs)  # validated before the model runs
        return self.cross.score(list(zip(first, second, strict=True)), PARAPHRASE)  # (n,)

    def _no_embeddings(self) -> NoReturn:
        raise ServiceError(
            NOT_CONFIGURED,
            f"model {self.model_name} is a cross-encoder: it scores pairs (/similarity, /paraphrase) and gives no "
            "sentence embeddings; serve a bi-encoder for /embed, /v1/embeddings and /search",
        )


# what the HTTP adapter serves: a bi-encoder's service (with its cross-encoders, if any) or a cross-encoder's
Served = ParaxlService | CrossEncoderService
