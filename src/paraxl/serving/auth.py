"""Optional API-key authentication for ``paraxl serve`` (``--api-key`` / ``PARAXL_API_KEY``).

With a key, every request needs ``Authorization: Bearer KEY`` except :data:`OPEN_PATHS`: ``/health``
(load balancers and orchestrators probe it without credentials), the API's documentation
(``/docs``, ``/redoc``, ``/openapi.json``: the schema of an open-source API, no data) and the
playground's static page and files (``/``, ``/playground/...``: the page asks for the key and sends
it with its API calls). Missing or wrong: 401 with ``WWW-Authenticate: Bearer``, in the JSON error
shape of the route's API (OpenAI's ``{"error": {...}}`` under ``/v1/``). The key is compared
with :func:`hmac.compare_digest`, whose time does not depend on where the strings first differ.
Without a key nothing is checked: the default bind (127.0.0.1) keeps the service on this machine.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from paraxl.errors import InputError

__all__ = ["OPEN_PATHS", "ApiKeyAuth", "add_api_key", "check_api_key"]

# the playground's page and files are open too: static, no data; the page asks for the key and sends it
OPEN_PATHS = frozenset({"/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json", "/"})
OPEN_PREFIXES = ("/playground/",)


def check_api_key(key: str, option: str = "--api-key") -> str:
    """``key`` if usable: an empty or blank key would look like protection while accepting ``Bearer ``."""
    if not key.strip():
        raise InputError(f"{option} is empty; give a secret (or leave the option and PARAXL_API_KEY unset)")
    if key != key.strip() or not key.isprintable() or not key.isascii():
        raise InputError(f"{option} must be printable ASCII without surrounding spaces (it travels in an HTTP header)")
    return key


MESSAGE = "missing or wrong API key: send Authorization: Bearer <key>"
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="paraxl"'}

# (status, message, headers, path) -> the error response in the shape of that path's API (the app's
# own ``_error``: OpenAI's shape under /v1/); the default is the service's shape
ErrorResponder = Callable[[int, str, dict[str, str], str], Response]


def _service_error(status: int, message: str, headers: dict[str, str], path: str) -> Response:
    return JSONResponse({"error": message, "detail": []}, status_code=status, headers=headers)


class ApiKeyAuth:
    """ASGI middleware: 401 unless the request carries ``Authorization: Bearer <key>`` (or is open)."""

    def __init__(
        self,
        app: ASGIApp,
        key: str,
        open_paths: frozenset[str] = OPEN_PATHS,
        error: ErrorResponder = _service_error,
    ) -> None:
        self.app = app
        self.key = check_api_key(key).encode()
        self.open_paths = open_paths
        self.error = error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or _is_open(scope["path"], self.open_paths)
            or self._authorized(Headers(scope=scope))
        ):
            await self.app(scope, receive, send)
            return
        await self.error(401, MESSAGE, dict(CHALLENGE), scope["path"])(scope, receive, send)

    def _authorized(self, headers: Headers) -> bool:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        # compare bytes (starlette decodes headers as latin-1, so this is what was sent): on a str,
        # compare_digest raises TypeError for non-ASCII, a 500 instead of a 401
        given = token.strip().encode("latin-1")
        return scheme.lower() == "bearer" and hmac.compare_digest(given, self.key)


def _is_open(path: str, open_paths: frozenset[str]) -> bool:
    return path in open_paths or path.startswith(OPEN_PREFIXES)


def add_api_key(app: Starlette, key: str | None, error: ErrorResponder = _service_error) -> None:
    """Require ``key`` on ``app``; ``None``: leave it open. ``error`` shapes the 401 per path."""
    if key is not None:
        app.add_middleware(ApiKeyAuth, key=key, error=error)
