"""Admission on the event loop: refuse (429) before a request waits for one of the server's worker threads.

The encoding endpoints run their work in the web server's thread pool (anyio's, 40 threads by
default), and the encoder queue (:class:`~paraxl.serving.encoder_queue.SerialEncoder`) decides in
that thread whether a request fits. Under overload every thread is busy waiting for the encoder, so
a request the queue would refuse at once first waits for a free thread: its 429 came after up to the
queue's whole wait. :class:`Admission` makes the same decision on the event loop, before the
thread is asked for: the texts already queued plus those admitted but still waiting for a thread,
plus this request's, must fit in ``max_queue`` (an empty queue takes any request, as the queue
itself does). The queue still checks again in the thread; this only answers the refusals early.

It also refuses a request that would wait past the queue's ``max_wait`` at the encoder's recent speed
(the texts ahead of it over the queue's texts-per-second estimate): such a request would only be
refused later, at its deadline, after holding a thread and a connection for ``max_wait`` seconds;
refused now, its 429 is fast and the requests admitted are served within their wait.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from starlette.concurrency import run_in_threadpool

from paraxl.serving.encoder_queue import Overloaded, SerialEncoder, queue_decided

__all__ = ["Admission"]

T = TypeVar("T")


class Admission:
    """Counts the texts between admission (event loop) and the encoder queue's decision (worker thread)."""

    def __init__(self, queue: SerialEncoder | None) -> None:
        self.queue = queue  # None: no encoder queue (a cross-encoder served alone): every request is admitted
        self._waiting = 0  # texts admitted that the encoder queue has not yet taken or refused
        self._lock = threading.Lock()  # the count drops in the worker thread

    @property
    def waiting_texts(self) -> int:
        return self._waiting

    async def run(self, texts: int, work: Callable[[], T]) -> T:
        """``work()`` in a worker thread if ``texts`` more texts fit, else :class:`Overloaded` at once.

        The texts count as waiting until the encoder queue has taken or refused the request's job
        (:data:`queue_decided`, called in the worker thread), or until the request ends without reaching
        it (a 4xx from validation, a client gone while waiting for a thread): exactly once either way.
        """
        self._admit(texts)
        released = False

        def release() -> None:
            nonlocal released
            with self._lock:
                if not released:
                    released = True
                    self._waiting -= texts

        token = queue_decided.set(release)  # run_in_threadpool runs work in a copy of this context
        try:
            return await run_in_threadpool(work)
        finally:
            queue_decided.reset(token)
            release()

    def _admit(self, texts: int) -> None:
        if self.queue is None:
            return
        limits = self.queue.limits
        with self._lock:
            ahead = self.queue.queued_texts + self._waiting
            full = ahead + texts > limits.max_queue
            # seconds of encoding ahead of it: the queue's deadline is for being taken, not for being done
            rate = self._rate()
            drain = ahead / rate if rate > 0 else 0.0
            if not ahead or not (full or drain > limits.max_wait):
                self._waiting += texts
                return
        if self.queue.observer is not None:
            self.queue.observer.refused("queue_full" if full else "wait_predicted")
        retry_after = self.queue.retry_after()
        why = (
            f"the encoder queue is full ({limits.max_queue} texts waiting at most)"
            if full
            else f"the encoder queue holds about {drain:.1f} s of work, more than a request may wait "
            f"({limits.max_wait:g} s)"
        )
        raise Overloaded(f"server busy: {why}; retry in {retry_after} s", retry_after)

    def _rate(self) -> float:
        """The encoder's recent texts per second, as the queue estimates it for Retry-After (0: unknown)."""
        return float(self.queue.texts_per_second) if self.queue is not None else 0.0
