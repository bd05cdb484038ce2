"""``GET /metrics``: the service's Prometheus metrics (``prometheus-client``'s text format).

* ``paraxl_http_requests_total{route,method,status}`` and ``paraxl_http_request_duration_seconds{route}``
  (a histogram): every request, counted by :class:`MetricsMiddleware` outside the other middlewares,
  so 401s and 413s are counted too. ``route`` is the route's template (``/v1/models/{model_id}``),
  ``other`` for unknown paths: a label per raw path would let clients grow the series without bound.
* ``paraxl_queue_texts``: texts waiting for the encoder (read when scraped).
* ``paraxl_batch_texts`` (histogram), ``paraxl_batch_duration_seconds`` (histogram),
  ``paraxl_sentences_encoded_total``, ``paraxl_tokens_encoded_total``: each forward pass, heard
  through the encoder queue's observer hook (``paraxl.serving.encoder_queue.EncoderObserver``).
* ``paraxl_overloaded_total{reason}``: requests answered 429 (``queue_full``, ``deadline``, or
  ``wait_predicted``: more work queued than may be waited for at the encoder's speed;
  ``cross_encoder_wait``: the cross-encoder stayed busy past the wait).
* ``paraxl_paraphrase_pairs_total{decided_by}``: /paraphrase pairs by the model that decided them
  (``bi``, ``cross``, ``fusion``); ``paraxl_cross_encoder_pairs_total{purpose}`` and
  ``paraxl_cross_encoder_duration_seconds{purpose}`` (a histogram): each cross-encoder call
  (``paraphrase`` or ``rerank``), heard through ``paraxl.serving.cross_encoding.PairObserver``.

Each app gets its own :class:`~prometheus_client.CollectorRegistry`, never the global one: a process
(a test run) may build many apps, and the global registry refuses a metric name twice.
"""

from __future__ import annotations

import time

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paraxl.serving.cross_service import Served

__all__ = ["MetricsMiddleware", "ServiceMetrics", "add_metrics"]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServiceMetrics:
    """The metrics of one app; also the encoder queue's observer (batches encoded, requests refused)."""

    def __init__(self, service: Served) -> None:
        self.service = service
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.requests = Counter(
            "paraxl_http_requests", "HTTP requests answered", ["route", "method", "status"], registry=registry
        )
        self.latency = Histogram(
            "paraxl_http_request_duration_seconds",
            "time from a request's start to its last byte sent",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        queue = Gauge("paraxl_queue_texts", "texts waiting for the encoder", registry=registry)
        queue.set_function(lambda: service.queue.queued_texts if service.queue is not None else 0)
        self.batch_texts = Histogram(
            "paraxl_batch_texts", "texts per forward pass (merged requests)", buckets=BATCH_BUCKETS, registry=registry
        )
        self.batch_seconds = Histogram(
            "paraxl_batch_duration_seconds", "time of one forward pass", buckets=LATENCY_BUCKETS, registry=registry
        )
        self.sentences = Counter("paraxl_sentences_encoded", "texts encoded", registry=registry)
        self.tokens = Counter(
            "paraxl_tokens_encoded", "tokens encoded (prompt and special tokens included)", registry=registry
        )
        self.overloaded = Counter(
            "paraxl_overloaded", "requests answered 429: queue full or deadline passed", ["reason"], registry=registry
        )
        self.decided = Counter(
            "paraxl_paraphrase_pairs", "/paraphrase pairs by the model that decided", ["decided_by"], registry=registry
        )
        self.cross_pairs = Counter(
            "paraxl_cross_encoder_pairs", "pairs scored by the cross-encoder", ["purpose"], registry=registry
        )
        self.cross_seconds = Histogram(
            "paraxl_cross_encoder_duration_seconds",
            "time of one cross-encoder call",
            ["purpose"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

    # ------------------------------------------------------------ EncoderObserver

    def batch_encoded(self, texts: int, tokens: int, seconds: float) -> None:
        # the token counts come from the requests' own tokenization (the queue sums them): no second pass
        self.batch_texts.observe(texts)
        self.batch_seconds.observe(seconds)
        self.sentences.inc(texts)
        self.tokens.inc(tokens)

    def refused(self, reason: str) -> None:
        self.overloaded.labels(reason=reason).inc()

    # ------------------------------------------------------------ PairObserver

    def pairs_decided(self, decided_by: str, pairs: int) -> None:
        self.decided.labels(decided_by=decided_by).inc(pairs)

    def cross_scored(self, purpose: str, pairs: int, seconds: float) -> None:
        self.cross_pairs.labels(purpose=purpose).inc(pairs)
        self.cross_seconds.labels(purpose=purpose).observe(seconds)

    # ------------------------------------------------------------ HTTP

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route=route, method=method, status=str(status)).inc()
        self.latency.labels(route=route).observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """ASGI middleware: counts and times every HTTP request by route template and status."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics, routes: FastAPI) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes  # the app whose routes give the labels (matched after the answer)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), 500  # an exception that escapes the app becomes a 500

        async def watched(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watched)
        finally:
            seconds = time.perf_counter() - start
            self.metrics.observe_request(self._route(scope), scope["method"], status, seconds)

    def _route(self, scope: Scope) -> str:
        for route in self.routes.router.routes:
            match, _ = route.matches(scope)
            if match is not Match.NONE:  # FULL, or PARTIAL (the path, another method: 405)
                return str(getattr(route, "path", "other"))
        return "other"


def add_metrics(app: FastAPI, service: Served) -> None:
    """``GET /metrics`` on ``app`` and the middleware that fills it; the queue reports to this app's metrics.

    Call it after the other middlewares are added, so it wraps them and counts what they refuse.
    """
    metrics = ServiceMetrics(service)
    if service.queue is not None:  # a cross-encoder served alone has none
        service.queue.observer = metrics  # one observer per service: the latest app built on it
    service.pair_observer = metrics  # and of its cross-encoder calls and pair decisions

    async def prometheus(_: Request) -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    # Prometheus text, not JSON: outside the OpenAPI schema (and so outside the API fuzzing)
    app.add_route("/metrics", prometheus, methods=["GET"], include_in_schema=False)
    app.add_middleware(MetricsMiddleware, metrics=metrics, routes=app)
