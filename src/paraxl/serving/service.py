"""The service behind ``paraxl serve``, with no web framework in it: validation, encoding, answers.

Everything a request can get wrong is checked here, so it is testable without HTTP and the same
for any front end; the FastAPI adapter (``paraxl.serving.app``) only maps JSON to these calls and
:class:`ServiceError` to a status code.

Concurrency: the web server calls these methods from many threads at once (FastAPI runs sync
endpoints in a thread pool). Validation and tokenization (once per request: its token counts give
the OpenAI usage and the metrics) run in those threads in parallel, but every forward
pass goes through one :class:`SerialEncoder`: one batch at a time, because the PyTorch encoder
flips train/eval mode inside ``encode`` (shared state) and already spreads one batch over all
cores, so two concurrent forwards on a 2-core machine only contend. Requests that queue up while
a batch runs are merged into the next forward pass (micro-batching, see ``SerialEncoder``; one
encode call over many requests' texts beats one call per request because each forward pass has a
fixed cost; ``benchmarks/bench_service.py --micro-batch both`` measures it end to end). The queue
is bounded (``QueueLimits``): a full queue, or a request waiting past its deadline, is refused with
:class:`Overloaded` (429 + ``Retry-After``); the queue lives in ``paraxl.serving.encoder_queue``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from paraxl.decision.decider import Decider
from paraxl.decision.rule_decider import RuleDecider, rule_numbers
from paraxl.errors import InputError
from paraxl.modeling.batching import Tokenized
from paraxl.modeling.protocol import SentenceEncoder
from paraxl.retrieval import paired_cosine
from paraxl.serving.cross_encoding import (
    PARAPHRASE,
    FunctionScorer,
    HitLike,
    PairObserver,
    PairRule,
    SerialPairScorer,
    decider_results,
    decider_summary,
    rerank_depth,
    rerank_texts,
    reranked_results,
    rule_results,
)
from paraxl.serving.encoder_queue import EncoderObserver, Overloaded, SerialEncoder, ServiceError
from paraxl.serving.limits import QueueLimits, ServiceLimits
from paraxl.serving.request_checks import INVALID, RequestChecks

__all__ = [
    "EncoderObserver",
    "Overloaded",
    "ParaxlService",
    "QueueLimits",
    "SearchHitLike",
    "Searcher",
    "SerialEncoder",
    "ServiceError",
    "ServiceLimits",
]

# Status codes: 413 for anything over a size limit, 422 for invalid input (paraxl.serving.request_checks),
# 409 when the request needs a feature this server was started without (no index / no calibration):
# the client's request conflicts with the server's configuration, and retrying it will not help (unlike 503).
NOT_CONFIGURED = 409
DEFAULT_K = 10


# ---------------------------------------------------------------- what the service needs from others


class SearchHitLike(HitLike, Protocol):
    """One search result (``paraxl.serving.index.SearchHit``): a reranker's hit (id, text, score) and its rank."""

    @property
    def rank(self) -> int: ...


class IndexInfoLike(Protocol):
    """What an index records about itself (``paraxl.serving.index.IndexInfo``)."""

    @property
    def backend(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    @property
    def prompt_name(self) -> str | None: ...


class Searcher(Protocol):
    """A vector index searched with query embeddings (``paraxl.serving.index.VectorIndex``)."""

    @property
    def info(self) -> IndexInfoLike: ...

    def __len__(self) -> int: ...

    def search(self, queries: np.ndarray, k: int) -> Sequence[Sequence[SearchHitLike]]: ...


# ---------------------------------------------------------------- the service


class ParaxlService:
    """Embeddings, similarities, paraphrase decisions and search for one model, with input validation.

    ``decider`` (a calibration or a fixed threshold) or ``rule`` (a cascade or fusion with a
    cross-encoder, :mod:`paraxl.serving.cross_encoding`) enables :meth:`paraphrase`, ``searcher`` (a
    vector index built with the same model) enables :meth:`search` and ``reranker`` (a cross-encoder)
    its ``rerank`` option; without them those answer 409. Construction fails with an
    :class:`InputError` if the index vectors have another dimension; whether they come from the same
    model is the caller's check (``paraxl serve`` uses ``paraxl.serving.index.check_query_model``, the
    rule ``paraxl search`` applies too).
    """

    embeds = True  # gives sentence vectors (a cross-encoder's service does not: paraxl.serving.cross_service)

    def __init__(
        self,
        encoder: SentenceEncoder,
        *,
        model_name: str,
        decider: Decider | None = None,
        searcher: Searcher | None = None,
        limits: ServiceLimits | None = None,
        batch_size: int = 32,
        backend: str | None = None,
        micro_batch: bool = True,
        version: str | None = None,
        queue: QueueLimits | None = None,
        rule: PairRule | None = None,
        reranker: SerialPairScorer | None = None,
    ) -> None:
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        needed = ("tokenize_texts", "encode_tokenized")
        missing = [name for name in needed if not callable(getattr(encoder, name, None))]
        if missing:  # checked here, not as a 500 inside the first request
            raise InputError(
                f"the service's encoder {type(encoder).__name__} lacks {' and '.join(missing)} "
                "(paraxl.modeling.protocol.SentenceEncoder): requests are tokenized once, then queued"
            )
        self.encoder = encoder
        self.model_name = model_name
        if decider is not None and rule is not None:
            raise InputError("give the service a decider or a cascade/fusion rule, not both")
        self.decider = decider
        self.rule = rule
        self.reranker = reranker
        self._pair_observer: PairObserver | None = None
        self.searcher = searcher
        self.limits = limits if limits is not None else ServiceLimits()
        self.checks = RequestChecks(self.limits)
        self.backend = backend
        self.version = version
        # hashing the model folder is done once here, not per /health call
        self.fingerprint = encoder.fingerprint
        if searcher is not None and searcher.info.dimension != encoder.dimension:
            raise InputError(
                f"the index holds {searcher.info.dimension}-dimensional vectors but model {model_name} gives "
                f"{encoder.dimension}; rebuild the index with this model"
            )
        self._encoder = SerialEncoder(
            encoder,
            batch_size=batch_size,
            max_merged_texts=max(self.limits.max_batch, batch_size),
            merge=micro_batch,
            limits=queue if queue is not None else QueueLimits(),
        )

    @property
    def pair_observer(self) -> PairObserver | None:
        """Who hears of pair decisions and cross-encoder calls (``paraxl.serving.metrics``)."""
        return self._pair_observer

    @pair_observer.setter
    def pair_observer(self, observer: PairObserver | None) -> None:
        self._pair_observer = observer
        for cross in (self.rule.cross if self.rule is not None else None, self.reranker):
            if cross is not None:  # the same scorer when the rule and rerank share one cross-encoder
                cross.observer = observer

    @property
    def decision_method(self) -> str:
        """How /paraphrase decides: the calibration's method, ``cascade`` or ``fusion`` ("" when it cannot)."""
        if self.rule is not None:
            return self.rule.kind
        return self.decider.method if self.decider is not None else ""

    @property
    def dimension(self) -> int:
        return self.encoder.dimension

    @property
    def queue(self) -> SerialEncoder:
        """The encoder queue every request goes through (its depth and observer: ``paraxl.serving.metrics``)."""
        return self._encoder

    # ------------------------------------------------------------ endpoints

    def health(self) -> dict[str, object]:
        """What this server serves and accepts (cheap: no encoding)."""
        settings = self.encoder.settings
        index = None
        if self.searcher is not None:
            info = self.searcher.info
            index = {"count": len(self.searcher), "backend": info.backend, "prompt_name": info.prompt_name}
        return {
            "status": "ok",
            "version": self.version,
            "model": self.model_name,
            "kind": "bi_encoder",
            "backend": self.backend,
            "fingerprint": self.fingerprint,
            "dimension": self.encoder.dimension,
            "max_seq_length": settings.max_seq_length,
            "prompts": sorted(settings.prompts),
            "default_prompt_name": settings.default_prompt_name,
            "calibration": decider_summary(self.decider),
            "rule": self._rule_summary(),
            "index": index,
            "rerank": self.reranker.summary() if self.reranker is not None else None,
            "limits": self.limits.as_dict(),
        }

    def _rule_summary(self) -> dict[str, object] | None:
        if self.rule is None:
            return None
        return {
            "kind": self.rule.kind,
            "rule": rule_numbers(self.rule.rule),
            "cross_encoder": self.rule.cross.summary(),
        }

    def embed(self, texts: Sequence[str], prompt_name: str | None = None) -> np.ndarray:
        """Texts -> float32 (n, dim) embeddings in input order (L2-normalised if the model normalises)."""
        return self.embed_with_usage(texts, prompt_name)[0]

    def embed_with_usage(self, texts: Sequence[str], prompt_name: str | None = None) -> tuple[np.ndarray, list[int]]:
        """:meth:`embed`, and the tokens the model read for each text (as :meth:`count_tokens` counts
        them), from the one tokenization the embeddings were computed from."""
        checked = self.checks.texts(texts, "texts")
        embeddings, tokenized = self._encode(checked, self._prompt(prompt_name))
        counts: list[int] = tokenized.lengths.tolist()  # tokens per text, as count_tokens counts them
        return embeddings, counts

    def similarity(self, pairs: Sequence[Sequence[str]]) -> list[float]:
        """Cosine similarity of each (first, second) pair; both sides use the model's default prompt."""
        return [float(score) for score in self._pair_scores(pairs)]

    def paraphrase(self, pairs: Sequence[Sequence[str]]) -> list[dict[str, object]]:
        """Per pair: the deciding ``score``, calibrated ``probability`` (None without a probability model),
        ``is_paraphrase``, the ``threshold`` it was decided with, who decided (``bi``, or with a rule
        ``bi``/``cross``/``fusion``) and each model's score (None where that model did not run)."""
        if self.rule is not None:
            first, second = self.checks.pairs(pairs)  # validated before any model runs
            prompt = self.rule.prompt_name  # the prompt the rule's cosines were fitted with
            cosines = FunctionScorer(lambda batch: self._pair_scores(batch, prompt))
            decider = RuleDecider(self.rule.rule, cosines, self.rule.cross.for_purpose(PARAPHRASE))
            return rule_results(decider.decide(list(zip(first, second, strict=True))), self._pair_observer)
        if self.decider is None:
            raise ServiceError(
                NOT_CONFIGURED,
                f"model {self.model_name} has no calibration, so this server cannot decide paraphrases; "
                "calibrate the model, or restart the server with --threshold T or --cascade RULE",
            )
        # score with the prompt the calibration was fitted with, or its threshold would not apply
        scores = self._pair_scores(pairs, self.decider.prompt_name)  # (n,)
        return decider_results(self.decider, scores, "bi", self._pair_observer)

    def search(
        self,
        queries: Sequence[str],
        k: int | None = None,
        prompt_name: str | None = None,
        *,
        rerank: bool = False,
        rerank_top_k: int | None = None,
    ) -> list[list[dict[str, object]]]:
        """The ``k`` nearest indexed texts of each query, best first (fewer if the index is smaller).

        ``k`` defaults to 10 (or ``max_k`` if that is smaller); ``prompt_name`` to the index's prompt.
        ``rerank``: the cross-encoder re-scores the first ``rerank_top_k`` (default ``k``, at least ``k``)
        hits of each query and the best ``k`` of them come back in its order (``paraxl.decision.rerank``).
        Each hit has its cosine ``score``, its ``bi_rank`` and ``cross_score`` (None without rerank).
        """
        if self.searcher is None:
            raise ServiceError(
                NOT_CONFIGURED, "this server has no index; restart it with --index DIR to enable /search"
            )
        checked = self.checks.texts(queries, "queries")
        if k is None:
            k = min(DEFAULT_K, self.limits.max_k)
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= self.limits.max_k:
            raise ServiceError(INVALID, f"k must be an integer from 1 to {self.limits.max_k}, got {k!r}")
        depth = rerank_depth(k, rerank, rerank_top_k, self.reranker, self.limits.max_k)
        # like `paraxl search`: queries take the prompt the index was built with unless the request names one
        recorded = self.searcher.info.prompt_name
        prompt = self._prompt(prompt_name) if prompt_name is not None or recorded is None else recorded
        embedded, _ = self._encode(checked, prompt)  # (q, dim)
        depth = min(depth, len(self.searcher))
        if depth == 0:
            return [[] for _ in checked]
        hits = self.searcher.search(embedded, depth)
        if rerank and self.reranker is not None:
            return reranked_results(checked, hits, self.reranker, k)
        return [
            [
                {"rank": int(h.rank), "id": str(h.id), "text": h.text, "score": float(h.score)}
                | {"bi_rank": int(h.rank), "cross_score": None}
                for h in row
            ]
            for row in hits
        ]

    def rerank(self, query: str, texts: Sequence[str], *, return_text: bool = False) -> list[dict[str, object]]:
        """The server's ``--rerank`` cross-encoder's score of ``(query, text)`` for every text, best first
        (:func:`~paraxl.serving.cross_encoding.rerank_texts`); 409 without one."""
        if self.reranker is None:
            raise ServiceError(
                NOT_CONFIGURED,
                "this server has no cross-encoder to rerank with; restart it with --rerank CROSS_ENCODER",
            )
        checked_query, checked = self.checks.text(query, "query"), self.checks.texts(texts, "texts")
        return rerank_texts(checked_query, checked, self.reranker, return_text)

    # ------------------------------------------------------------ validation

    def _pair_scores(self, pairs: Sequence[Sequence[str]], prompt_name: str | None = None) -> np.ndarray:
        first, second = self.checks.pairs(pairs)
        prompt = self._prompt(None) if prompt_name is None else prompt_name  # "" = no prompt
        embedded, _ = self._encode(first + second, prompt)  # (2n, dim)
        return paired_cosine(embedded[: len(first)], embedded[len(first) :])

    def _encode(self, texts: list[str], prompt_name: str | None) -> tuple[np.ndarray, Tokenized]:
        """Tokenize here, in the request's thread (outside the encoder's lock), then queue for a forward pass."""
        tokenized = self.encoder.tokenize_texts(texts, prompt_name)
        return self._encoder.encode_tokenized(tokenized), tokenized

    def _prompt(self, prompt_name: str | None) -> str | None:
        """The prompt to encode with: the named one, else the model's default (None if it has none)."""
        prompts = self.encoder.settings.prompts
        if prompt_name is None:
            return self.encoder.settings.default_prompt_name
        if not isinstance(prompt_name, str) or prompt_name not in prompts:
            known = ", ".join(sorted(prompts)) or "none"
            raise ServiceError(INVALID, f"unknown prompt_name {prompt_name!r}; this model has: {known}")
        return prompt_name

    # ------------------------------------------------------------ token counts (the OpenAI routes' usage)

    def count_tokens(self, texts: Sequence[str], prompt_name: str | None = None) -> list[int]:
        """Tokens the model reads for each text: prompt prefix and special tokens included, truncated to
        ``max_seq_length`` as the encoder truncates. A request that is embedded too gets these counts from
        :meth:`embed_with_usage` without tokenizing twice.

        Safe from many threads: the encoder's ``tokenize_texts`` never changes a tokenizer's state.
        """
        counts: list[int] = self.encoder.tokenize_texts(list(texts), self._prompt(prompt_name)).lengths.tolist()
        return counts
