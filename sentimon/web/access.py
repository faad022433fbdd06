"""Who may use a worker's web server: anyone on the machine while it listens on loopback (the default);
only holders of ``worker.token`` once it listens anywhere else. Whatever the token, :func:`guard` refuses
requests that change state from another site (a web page the analyst has open could otherwise post to the
loopback port) and turns a bad parameter into a 400 that says which and why.

With a token, every path but ``/health`` and ``/metrics`` (probes and Prometheus) needs it: as
``Authorization: Bearer <token>``, or, for a browser, once as ``/live/?token=<token>``, which sets an
HttpOnly, SameSite=Strict cookie and redirects to ``/live/`` (the token leaves the address bar; the
page's own requests carry the cookie).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from aiohttp import web

from sentimon.settings import is_loopback

OPEN_PATHS = ("/health", "/metrics")
COOKIE = "sentimon_token"


class Exposed(ValueError):
    """The web server would listen beyond loopback without a token."""


def check_exposure(host: str, token: str) -> None:
    """:class:`Exposed` when the web server would listen beyond loopback without a token."""
    if not is_loopback(host) and not token:
        raise Exposed(f"worker.host is {host}: the live page and the API would be open to the network. Set a token "
                         "(SENTIMON_WORKER__TOKEN, or a file in SENTIMON_SECRETS_DIR) or listen on 127.0.0.1")


def headers(token: str) -> dict[str, str]:
    """The request headers a client of a worker's API sends (none without a token)."""
    return {"Authorization": f"Bearer {token}"} if token else {}


def _matches(given: str | None, token: str) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), token.encode())  # type: ignore[union-attr]


def authorized(request: web.Request, token: str) -> bool:
    if request.path in OPEN_PATHS:
        return True
    auth = request.headers.get("Authorization", "")
    return (auth.startswith("Bearer ") and _matches(auth[7:].strip(), token)) or _matches(request.cookies.get(COOKIE), token)


def middleware(token: str) -> Callable:
    """The aiohttp middleware that enforces ``token`` (see the module's docstring)."""

    @web.middleware
    async def check(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
        if authorized(request, token):
            return await handler(request)
        if request.method == "GET" and request.path == "/live/" and _matches(request.query.get("token"), token):
            response = web.HTTPSeeOther("/live/")
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/", secure=request.secure)
            raise response
        return web.json_response({"error": "a token is required: Authorization: Bearer <worker.token>"}, status=401,
                                 headers={"WWW-Authenticate": 'Bearer realm="sentimon"'})

    return check


UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


class BadRequest(ValueError):
    """A request parameter or body is wrong; the message says which and why (answered 400)."""


def cross_site(request: web.Request) -> str:
    """Why a request that changes state comes from another site ('' when it does not): an ``Origin`` other
    than this server's, or a browser's ``Sec-Fetch-Site`` saying so."""
    origin = request.headers.get("Origin")
    if origin is not None:
        expected = f"{request.scheme}://{request.host}"
        if origin.lower() != expected.lower():
            return f"cross-origin request from {origin[:200]!r} refused (only {expected} may change state)"
    site = request.headers.get("Sec-Fetch-Site", "")
    if site in ("cross-site", "same-site"):
        return f"{site} request refused"
    return ""


@web.middleware
async def guard(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
    """Writes only as JSON from this server's own origin (no form or text/plain posts from another page);
    :class:`BadRequest` from a handler as 400."""
    if request.method in UNSAFE:
        why = cross_site(request)
        if why:
            return web.json_response({"error": why}, status=403)
        if request.method != "DELETE" and request.content_type != "application/json":
            return web.json_response({"error": f"send JSON (Content-Type: application/json), not "
                                               f"{request.content_type or 'nothing'}"}, status=415)
    try:
        return await handler(request)
    except BadRequest as exc:
        return web.json_response({"error": str(exc)}, status=400)
