"""The service's one encoder queue: merged forward passes, a bounded queue and a per-request deadline.

Kept apart from :mod:`paraxl.serving.service` (validation and answers) and free of web-framework and
metrics imports: the HTTP adapter maps :class:`ServiceError` (and its :class:`Overloaded`) to a status
code, and a metrics module watches the queue through the small :class:`EncoderObserver` protocol.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol

import numpy as np

from paraxl.errors import ParaxlError
from paraxl.modeling.batching import Tokenized
from paraxl.modeling.protocol import SentenceEncoder
from paraxl.serving.limits import QueueLimits

__all__ = [
    "EncoderObserver",
    "Overloaded",
    "RequestClock",
    "SerialEncoder",
    "ServiceError",
    "queue_decided",
    "request_received",
]

TOO_MANY = 429

# When the request now served was read in full (time.monotonic()), set by :class:`RequestClock`: a
# request's deadline runs from then, so the time it waits for a worker thread counts too (the web
# server has a bounded thread pool, itself an unbounded queue in front of this one). Worker threads
# see it because they run in a copy of the request's context. None (no HTTP): from the call.
request_received: ContextVar[float | None] = ContextVar("paraxl_request_received", default=None)

# Called once when this request's job has been queued or refused (set by the service's admission on the
# event loop, which counts a request's texts from admission until then: while its worker thread waits,
# validates and tokenizes, the texts are in neither count otherwise). None: nothing to tell.
queue_decided: ContextVar[Callable[[], None] | None] = ContextVar("paraxl_queue_decided", default=None)


class ServiceError(ParaxlError):
    """A request the service refuses: ``status`` is the HTTP status code, ``message`` says why,
    ``headers`` are extra response headers (``Retry-After`` for :class:`Overloaded`)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


class Overloaded(ServiceError):
    """429: the queue is full, or the request waited past its deadline; retry after ``retry_after`` s.

    Both cases are 429, not 503: the request was fine and the server is healthy, only busy, and a
    client (or a load test) should read 5xx as a fault. ``Retry-After`` is an integer estimate.
    """

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(TOO_MANY, message, {"Retry-After": str(retry_after)})
        self.retry_after = retry_after


class EncoderObserver(Protocol):
    """What a metrics collector hears from the queue (called outside the encoder's run lock)."""

    def batch_encoded(self, texts: int, tokens: int, seconds: float) -> None:
        """One encode call over ``texts`` texts holding ``tokens`` tokens (several requests' when merged;
        prompt and special tokens included, unpadded) took ``seconds``."""

    def refused(self, reason: str) -> None:
        """A request answered 429: ``reason`` is ``queue_full``, ``deadline`` or ``wait_predicted``."""


@dataclass(eq=False)
class _Job:
    """One caller's tokenized texts waiting for a forward pass; filled in by whichever thread runs it."""

    tokenized: Tokenized
    deadline: float = math.inf  # time.monotonic() by which it must have been taken for encoding
    result: np.ndarray | None = None
    error: BaseException | None = None
    finished: bool = False
    done: threading.Event = field(default_factory=threading.Event)


@dataclass
class SerialEncoder:
    """Runs ``encoder.encode_tokenized`` for many threads, one call at a time, merging calls that queue up.

    Callers tokenize in their own thread (:meth:`encode` does it for them; the service tokenizes
    first, for its token counts), outside the run lock, so tokenizing overlaps the forward pass.
    Each caller enqueues its tokenized texts, then waits for the run lock. The thread that gets it
    encodes its own job together with queued jobs (up to ``max_merged_texts`` texts) in one
    ``encode_tokenized`` call, which sorts the merged texts by token count into token-budget batches
    (``paraxl.modeling.batching``); callers whose job was taken along find it finished and return at
    once. Jobs of different prompts merge too: the prompt prefix is already in their token ids.
    No background thread is involved, and a lone caller gets exactly ``encoder.encode(texts)``.
    Merged calls differ from separate ones only by float rounding (other batch shapes, ~1e-7).

    Backpressure (``limits``): a job is refused at once (:class:`Overloaded`) when the texts already
    waiting plus its own would pass ``limits.max_queue`` (an empty queue takes any job, so a request
    larger than the queue is still served); a job not taken for encoding within ``limits.max_wait``
    seconds leaves the queue and is refused too, so a waiting caller never hangs past its deadline.
    """

    encoder: SentenceEncoder
    batch_size: int = 32
    max_merged_texts: int = 256
    merge: bool = True
    limits: QueueLimits = field(default_factory=QueueLimits)
    observer: EncoderObserver | None = None
    _queue: list[_Job] = field(default_factory=list, init=False, repr=False)
    _queued_texts: int = field(default=0, init=False, repr=False)
    _texts_per_second: float = field(default=0.0, init=False, repr=False)  # running estimate, 0: unknown
    _queue_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _run_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def queued_texts(self) -> int:
        """Texts waiting for a forward pass (not counting the batch being encoded)."""
        return self._queued_texts

    @property
    def texts_per_second(self) -> float:
        """The encoder's recent speed: a running average over encode calls (0.0 until one has run)."""
        return self._texts_per_second

    def encode(self, texts: Sequence[str], prompt_name: str | None = None) -> np.ndarray:
        """Texts -> float32 (n, dim), as ``encoder.encode`` would give them; :class:`Overloaded` when busy.

        Tokenizes in the calling thread, before queueing."""
        return self.encode_tokenized(self.encoder.tokenize_texts(texts, prompt_name))

    def encode_tokenized(self, tokenized: Tokenized) -> np.ndarray:
        """``encoder.tokenize_texts``'s output -> float32 (n, dim) in input order; :class:`Overloaded` when busy."""
        received = request_received.get()
        start = received if received is not None else time.monotonic()
        job = self._admit(_Job(tokenized, deadline=start + self.limits.max_wait))
        while not job.finished:
            if self._run_lock.acquire(timeout=max(0.0, job.deadline - time.monotonic())):
                try:  # our job is either finished (taken along) or still queued: the run lock is held while taken
                    ran = None if job.finished else self._run(self._take(job))
                finally:
                    self._run_lock.release()
                if ran is not None and self.observer is not None:
                    self.observer.batch_encoded(*ran)
            elif self._withdraw(job):
                self._refuse("deadline", f"the request waited {self.limits.max_wait:g} s for the encoder")
            else:  # taken along by the thread encoding now: its answer is coming
                job.done.wait()
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result

    def _admit(self, job: _Job) -> _Job:
        decided = queue_decided.get()
        try:
            if job.deadline <= time.monotonic():  # it waited its time before reaching the queue
                self._refuse("deadline", f"the request waited {self.limits.max_wait:g} s for the encoder")
            with self._queue_lock:
                full = self._queue and self._queued_texts + len(job.tokenized) > self.limits.max_queue
                if not full:
                    self._queue.append(job)
                    self._queued_texts += len(job.tokenized)
                    return job
            self._refuse("queue_full", f"the encoder queue is full ({self.limits.max_queue} texts waiting at most)")
        finally:
            if decided is not None:  # after the append: the texts are in the queue's count before they leave the other
                decided()

    def _withdraw(self, job: _Job) -> bool:
        """Take ``job`` off the queue if nobody has taken it for encoding yet."""
        with self._queue_lock:
            if job not in self._queue:
                return False
            self._queue.remove(job)
            self._queued_texts -= len(job.tokenized)
            return True

    def _refuse(self, reason: str, why: str) -> NoReturn:
        if self.observer is not None:
            self.observer.refused(reason)
        retry_after = self.retry_after()
        raise Overloaded(f"server busy: {why}; retry in {retry_after} s", retry_after)

    def retry_after(self) -> int:
        """Seconds until the texts now waiting should have been encoded (1 when unknown; at most the max wait)."""
        rate = self._texts_per_second
        estimate = math.ceil(self._queued_texts / rate) if rate > 0 else 1
        return max(1, min(estimate, math.ceil(self.limits.max_wait)))

    def _take(self, job: _Job) -> list[_Job]:
        """Our job first (so every caller makes progress), then queued jobs that fit beside it.

        Jobs past their deadline are left for their callers to withdraw: encoding them would delay
        everyone behind them for an answer their callers are about to refuse anyway.
        """
        now = time.monotonic()
        with self._queue_lock:
            self._queue.remove(job)
            batch, total = [job], len(job.tokenized)
            if self.merge:
                for other in list(self._queue):
                    if total + len(other.tokenized) <= self.max_merged_texts and other.deadline > now:
                        self._queue.remove(other)
                        batch.append(other)
                        total += len(other.tokenized)
            self._queued_texts -= total
        return batch

    def _run(self, batch: list[_Job]) -> tuple[int, int, float] | None:
        """Encode ``batch``; what the observer hears of it (None when the encoder failed)."""
        merged = Tokenized.concat([job.tokenized for job in batch]) if len(batch) > 1 else batch[0].tokenized
        start = time.monotonic()
        try:
            matrix = self.encoder.encode_tokenized(
                merged, batch_size=self.batch_size, show_progress=False
            )  # (sum of texts, dim)
        except BaseException as exc:  # every waiting caller must hear of it, not just this thread
            for job in batch:
                job.error, job.finished = exc, True
                job.done.set()
            return None
        seconds = time.monotonic() - start
        if seconds > 0:  # a running average, so one slow batch does not dominate the Retry-After estimate
            rate = len(merged) / seconds
            self._texts_per_second = rate if self._texts_per_second == 0 else 0.8 * self._texts_per_second + 0.2 * rate
        offset = 0
        for job in batch:
            job.result = matrix[offset : offset + len(job.tokenized)]
            job.finished = True
            job.done.set()
            offset += len(job.tokenized)
        return len(merged), merged.total_tokens, seconds


ASGIApp = Callable[[dict[str, Any], Callable[[], Awaitable[dict[str, Any]]], Any], Awaitable[None]]


class RequestClock:
    """ASGI middleware: sets :data:`request_received` when a request's body has been read in full.

    The last body byte, not the first header byte: a slow upload is bounded by the server's read
    timeout, and should not use up the time the request may wait for the encoder.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(
        self, scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]], send: Any
    ) -> None:
        async def clocked() -> dict[str, Any]:
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                request_received.set(time.monotonic())  # in the request's task: its endpoint's thread inherits it
            return message

        await self.app(scope, clocked if scope["type"] == "http" else receive, send)
