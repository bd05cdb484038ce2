"""Optional API-key authentication for ``paraxl serve`` (``--api-key`` / ``PARAXL_API_KEY``).

With a key, every request needs ``Authorization: Bearer KEY`` except :data:`OPEN_PATHS`: ``/health``
(load balancers and orchestrators probe it without credentials) and the API's documentation
(``/docs``, ``/redoc``, ``/openapi.json``: the schema of an open-source API, no data). Missing or
wrong: 401 with ``WWW-Authenticate: Bearer``, in the service's JSON error shape. The key is compared
with :func:`hmac.compare_digest`, whose time does not depend on where the strings first differ.
Without a key nothing is checked: the default bind (127.0.0.1) keeps the service on this machine.
"""

from __future__ import annotations

import hmac
import json

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from paraxl.errors import InputError

__all__ = ["OPEN_PATHS", "ApiKeyAuth", "add_api_key", "check_api_key"]

OPEN_PATHS = frozenset({"/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})


def check_api_key(key: str, option: str = "--api-key") -> str:
    """``key`` if usable: an empty or blank key would look like protection while accepting ``Bearer ``."""
    if not key.strip():
        raise InputError(f"{option} is empty; give a secret (or leave the option and PARAXL_API_KEY unset)")
    if key != key.strip() or not key.isprintable() or not key.isascii():
        raise InputError(f"{option} must be printable ASCII without surrounding spaces (it travels in an HTTP header)")
    return key


class ApiKeyAuth:
    """ASGI middleware: 401 unless the request carries ``Authorization: Bearer <key>`` (or is open)."""

    def __init__(self, app: ASGIApp, key: str, open_paths: frozenset[str] = OPEN_PATHS) -> None:
        self.app = app
        self.key = check_api_key(key).encode()
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths or self._authorized(Headers(scope=scope)):
            await self.app(scope, receive, send)
            return
        body = json.dumps({"error": "missing or wrong API key: send Authorization: Bearer <key>", "detail": []})
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b'Bearer realm="paraxl"'),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body.encode()})

    def _authorized(self, headers: Headers) -> bool:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        # compare bytes (starlette decodes headers as latin-1, so this is what was sent): on a str,
        # compare_digest raises TypeError for non-ASCII, a 500 instead of a 401
        given = token.strip().encode("latin-1")
        return scheme.lower() == "bearer" and hmac.compare_digest(given, self.key)


def add_api_key(app: Starlette, key: str | None) -> None:
    """Require ``key`` on ``app``; ``None``: leave it open."""
    if key is not None:
        app.add_middleware(ApiKeyAuth, key=key)
