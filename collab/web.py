"""The web app's routes: the lobby at ``/``, a session at ``/r/<room>``, the
bundle under ``/static/``, and the page's settings at ``/web/config.json``.

The files are built from ``web/`` (``make web``) into ``collab/static``
and shipped in the Python package. The script and the stylesheet have
content-hashed names (``app.<16 hex>.js``) and are cached for a year as
immutable; the pages and the other files revalidate (``no-cache``). Every
text file has ``.br`` and ``.gz`` siblings written by the build, which
aiohttp's ``FileResponse`` sends (with ``Content-Encoding``) when the
request's ``Accept-Encoding`` names that coding. Every page carries a Content-Security-
Policy whose ``frame-ancestors`` says who may embed it (``--frame-ancestors``)
and whose ``connect-src`` is the page's own origin (plus the ``--cors-origins``
that are origins): a script that got into the page cannot send a board or a
chat to a WebSocket server of its choosing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from crdt.errors import CollabError
from rooms.names import validate_room_id

if TYPE_CHECKING:
    from collab.app import CollabApp

__all__ = ["HASHED_NAME", "IMMUTABLE", "STATIC_DIR", "add_web_routes", "content_security_policy"]

STATIC_DIR = Path(__file__).resolve().parent / "static"

#: A file name web/build.mjs gave a content hash (``app.0123456789abcdef.js``,
#: or its ``.br``/``.gz`` sibling): its bytes never change under that name.
HASHED_NAME = re.compile(r"[\w-]+\.[0-9a-f]{16}\.[a-z0-9]+(?:\.br|\.gz)?")
#: The caching of a hashed name: a year, and no revalidation on reload.
IMMUTABLE = "public, max-age=31536000, immutable"
#: Answers that a cache may keep and reuse (a 404 is never kept for a year).
_CACHEABLE_STATUSES = frozenset({200, 206, 304})


#: An origin as a CSP source: scheme://host[:port], no wildcard, nothing
#: that could end the directive.
_ORIGIN = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[A-Za-z0-9.\[\]:-]+")


def content_security_policy(
    frame_ancestors: tuple[str, ...], connect_origins: Iterable[str] = ()
) -> str:
    """The pages' policy. ``connect-src`` is ``'self'`` (CSP Level 3 browsers
    let it match the page's own host over ``ws:``/``wss:``), plus each of
    ``connect_origins`` that is an origin: ``*`` and other wildcards are
    left out, never widened to any host."""
    ancestors = " ".join(frame_ancestors) or "'none'"
    connect = " ".join(["'self'", *(o for o in connect_origins if _ORIGIN.fullmatch(o))])
    return (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        f"img-src 'self' data: blob:; connect-src {connect}; base-uri 'none'; "
        f"form-action 'self'; object-src 'none'; frame-ancestors {ancestors}"
    )


def add_web_routes(web_app: web.Application, app: CollabApp) -> None:
    settings = app.settings
    policy = settings.content_security_policy or content_security_policy(
        settings.frame_ancestors, settings.cors_origins
    )
    headers = {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }

    def page(name: str) -> web.FileResponse:
        # FileResponse sends index.html.br or .gz when Accept-Encoding allows;
        # Vary on every answer, the plain one included, keeps caches apart.
        return web.FileResponse(STATIC_DIR / name, headers={**headers, "Vary": "Accept-Encoding"})

    async def lobby(request: web.Request) -> web.StreamResponse:
        return page("index.html")

    async def session(request: web.Request) -> web.StreamResponse:
        try:
            validate_room_id(request.match_info["room"])
        except CollabError as exc:
            raise web.HTTPNotFound(text=str(exc)) from None
        return page("session.html")

    async def config(request: web.Request) -> web.Response:
        # Origins (not keywords or wildcards) the frame accepts a token from;
        # with 'self' also its own origin (a platform serving collab under its own).
        origins = [a for a in settings.frame_ancestors if "://" in a and "*" not in a]
        body = {
            "dev": settings.dev,
            "embedOrigins": origins,
            "embedSelf": "'self'" in settings.frame_ancestors,
            # The web app refuses a larger picture before sending it (protocol.md §8.5).
            "maxImageBytes": settings.max_image_bytes,
            # How long an author may delete their message (protocol.md §6.6; 0: never).
            "chatDeleteWindowS": settings.chat_delete_window_s,
        }
        return web.json_response(body, headers=headers)

    async def static_headers(request: web.Request, response: web.StreamResponse) -> None:
        # on_response_prepare, not a middleware: a FileResponse learns that its
        # file is missing (404) only when it is prepared, after any middleware.
        if not request.path.startswith("/static/"):
            return
        response.headers.update(headers)
        response.headers["Vary"] = "Accept-Encoding"
        name = request.path.removeprefix("/static/")
        if HASHED_NAME.fullmatch(name) and response.status in _CACHEABLE_STATUSES:
            response.headers["Cache-Control"] = IMMUTABLE

    web_app.on_response_prepare.append(static_headers)
    r = web_app.router
    r.add_get("/", lobby)
    r.add_get("/web/config.json", config)
    r.add_get("/r/{room:.+}", session)
    r.add_static("/static/", STATIC_DIR, follow_symlinks=False)
