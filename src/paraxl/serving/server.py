"""How ``paraxl serve`` runs uvicorn: connection limits and a read timeout for every request.

uvicorn's own settings cover three of the four limits: ``timeout_keep_alive`` (an idle connection
between requests), ``limit_concurrency`` (connections + tasks beyond it are answered 503) and
``h11_max_incomplete_event_size`` (the largest request line + header block h11 buffers; larger: 400).
What it lacks is a read timeout: once a client has sent its first byte, uvicorn waits for the rest of
the header, and of the body, forever (a half-sent header kept a connection open indefinitely, whatever
``timeout_keep_alive`` says), so a few hundred slow clients ("slowloris") hold as many file
descriptors. :class:`ReadTimeoutH11Protocol` adds that one timer to uvicorn's h11 protocol.
"""

from __future__ import annotations

import asyncio
import gc
from typing import Any, ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from paraxl.serving.limits import DEFAULT_REQUEST_TIMEOUT, ServerLimits


def freeze_loaded_objects() -> None:
    """Put every object alive now (model, tokenizer, index, app) beyond the cyclic garbage collector.

    A full (generation 2) collection walks every tracked object, and with the model, its tokenizer,
    the index and the app loaded one took 120-610 ms here: a stall of the event loop and of every
    request in flight, which made the slowest 1 % of 429s under overload take hundreds of ms
    (RESULTS.md, issue 30). These objects live as long as the process, so walking them is wasted:
    ``gc.freeze`` moves them to a permanent generation, and later full collections walk only what
    requests create (2-19 ms measured). The cycle collector never frees a frozen object; nothing
    loaded before serving is meant to be freed.
    """
    gc.collect()  # what startup left as garbage goes now, not into the permanent generation
    gc.freeze()


def uvicorn_settings(limits: ServerLimits) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` / ``uvicorn.Config`` that apply ``limits``."""
    return {
        "http": ReadTimeoutH11Protocol.with_timeout(limits.request_timeout),
        "timeout_keep_alive": limits.keep_alive,
        "limit_concurrency": limits.max_connections,
        "h11_max_incomplete_event_size": limits.max_header_bytes,
        # SIGTERM: stop accepting, finish the requests in flight for at most this long, then exit
        "timeout_graceful_shutdown": limits.shutdown_timeout,
    }


class ReadTimeoutH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request is not fully read in ``request_timeout``.

    The clock starts when the connection opens, or with the first byte of a later request on a
    kept-alive connection, and stops once h11 has the whole request (header and body); it is not
    restarted by more bytes, so trickling a header byte by byte does not keep a connection open.
    The app's own work (encoding) is never timed: the clock is stopped by then.
    """

    request_timeout: ClassVar[float] = DEFAULT_REQUEST_TIMEOUT
    _read_timer: asyncio.TimerHandle | None = None

    @classmethod
    def with_timeout(cls, seconds: float) -> type[ReadTimeoutH11Protocol]:
        """This protocol with another timeout (uvicorn takes a class and builds one per connection)."""
        return type(cls.__name__, (cls,), {"request_timeout": float(seconds)})

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_clock()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow_request()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # a pipelined request already buffered is being read now, without a data_received to start the clock
        if self.conn.trailing_data[0]:
            self._follow_request()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_clock()
        super().connection_lost(exc)

    def _follow_request(self) -> None:
        """Run the clock while h11 is still reading a request (its header: IDLE; its body: SEND_BODY)."""
        reading = self.conn.their_state in (h11.IDLE, h11.SEND_BODY)
        if reading and not self.transport.is_closing():
            self._start_clock()
        else:
            self._stop_clock()

    def _start_clock(self) -> None:
        if self._read_timer is None:
            self._read_timer = self.loop.call_later(self.request_timeout, self._read_timed_out)

    def _stop_clock(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _read_timed_out(self) -> None:
        self._read_timer = None
        if not self.transport.is_closing():
            self.logger.info("closing a connection whose request was not read within %.1f s", self.request_timeout)
            self.transport.close()
