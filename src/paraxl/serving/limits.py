"""How much one request may ask of the service (enforced by the service layer and mirrored in the HTTP schema),
and how long and how many connections the HTTP server keeps (:class:`ServerLimits`).

Kept free of web-framework imports: the CLI reads the defaults for its options from here.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import asdict, dataclass

from paraxl.errors import InputError


@dataclass(frozen=True)
class ServiceLimits:
    """Per-request bounds that keep one client from monopolising the (single) encoder.

    ``max_batch`` counts the items of one request (texts, pairs or queries); ``max_text_chars``
    bounds each text in characters: longer texts are *rejected* (413), never silently truncated,
    so a client always knows what was embedded (the model still truncates to its own token limit).
    ``max_body_bytes`` is checked before any JSON is parsed.
    """

    max_batch: int = 256
    max_text_chars: int = 2000
    max_k: int = 100
    max_body_bytes: int = 1_000_000

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"service limit {name} must be a positive integer, got {value!r}")

    def as_dict(self) -> dict[str, int]:
        """The limits as plain JSON-ready numbers (for /health)."""
        return {name: int(value) for name, value in asdict(self).items()}


# The encoder queue (texts waiting for a forward pass, across requests) and how long one request may
# wait in it. At the ~50-100 sentences/s of the int8 model on a few cores, 1024 texts drain in about
# 10-20 s; a request not taken within 10 s is answered 429 rather than left to its client's timeout.
DEFAULT_MAX_QUEUE = 1024
DEFAULT_MAX_WAIT = 10.0


@dataclass(frozen=True)
class QueueLimits:
    """Backpressure: at most ``max_queue`` texts wait for the encoder, each request at most ``max_wait`` s.

    Beyond either, the request is answered 429 with ``Retry-After`` (see ``paraxl.serving.encoder_queue``).
    """

    max_queue: int = DEFAULT_MAX_QUEUE
    max_wait: float = DEFAULT_MAX_WAIT

    def __post_init__(self) -> None:
        if isinstance(self.max_queue, bool) or not isinstance(self.max_queue, int) or self.max_queue < 1:
            raise InputError(f"max_queue must be a positive integer, got {self.max_queue!r}")
        if not (math.isfinite(self.max_wait) and self.max_wait > 0):
            raise InputError(f"max_wait must be a finite number of seconds > 0, got {self.max_wait}")


# A request's header and body must be in within this many seconds of its first byte. The default body
# limit (1 MB) at 10 s needs 100 kB/s: any real client, while a slowloris must reconnect every 10 s.
DEFAULT_REQUEST_TIMEOUT = 10.0
DEFAULT_KEEP_ALIVE = 5  # uvicorn's own default
# Connections (and tasks) served at once; more are answered 503. One process encodes one batch at a
# time, so hundreds of concurrent clients only queue; 512 stays well below the usual 1024 descriptors.
DEFAULT_MAX_CONNECTIONS = 512
DEFAULT_MAX_HEADER_BYTES = 16 * 1024  # h11's default, stated: request line + headers
# On SIGTERM the server stops accepting and waits this long for requests in flight (uvicorn alone
# waits forever); a request served within the queue's max wait is done well before.
DEFAULT_SHUTDOWN_TIMEOUT = 30.0


@dataclass(frozen=True)
class ServerLimits:
    """Connection-level limits of the HTTP server (applied by :func:`paraxl.serving.server.uvicorn_settings`)."""

    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    keep_alive: int = DEFAULT_KEEP_ALIVE
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT

    def __post_init__(self) -> None:
        for name in ("request_timeout", "shutdown_timeout"):
            seconds = getattr(self, name)
            if not (math.isfinite(seconds) and seconds > 0):
                raise InputError(f"{name} must be a finite number of seconds > 0, got {seconds}")
        for name in ("keep_alive", "max_connections", "max_header_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"server limit {name} must be a positive integer, got {value!r}")


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the service on this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # another host name: it may resolve to anything
        return False
