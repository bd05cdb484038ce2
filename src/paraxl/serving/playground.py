"""The playground: a static page at ``/`` that tries the API from a browser (``paraxl serve``, then open it).

Three files shipped inside the package (``serving/playground/``: index.html, app.js, style.css,
plus an icon) and served from memory: no build step, no CDN, no external font, so the page works
on a machine without network. It only calls this server's own JSON endpoints (``/health``,
``/embed``, ``/paraphrase``, ``/search``; for a cross-encoder served alone ``/similarity`` instead of
``/embed``), so it can do nothing a client could not do already.

Every file carries ``Content-Security-Policy: default-src 'self'``: scripts, styles, images and
requests may come from this server only, and inline scripts are refused (the page has none), so
text typed into it or returned by the API can never run as code. The routes are left out of the
OpenAPI schema: they are a page for people, not part of the API. With ``--api-key`` the page and its
files stay open (static, no data): on the first 401 the page asks for the key, keeps it in the tab's
session storage and sends it as ``Authorization: Bearer`` to this server's API only.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import Response

__all__ = ["ASSETS", "POLICY", "router"]

POLICY = "default-src 'self'"
# name -> media type: the only files served, so no request path ever reaches the file system
ASSETS = {
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
_HEADERS = {"Content-Security-Policy": POLICY, "X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}

router = APIRouter(include_in_schema=False)


def _read(name: str) -> bytes:
    return files("paraxl.serving").joinpath("playground", name).read_bytes()


@router.get("/")
def page() -> Response:
    """The page itself (read per request: small, and an edited file shows without a restart)."""
    return Response(_read("index.html"), media_type="text/html; charset=utf-8", headers=_HEADERS)


def _asset_route(name: str, media_type: str) -> None:
    @router.get(f"/playground/{name}", name=f"playground-{name}")
    def asset() -> Response:
        return Response(_read(name), media_type=media_type, headers=_HEADERS)


for _name, _media_type in ASSETS.items():
    _asset_route(_name, _media_type)
