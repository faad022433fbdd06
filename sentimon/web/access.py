"""Who may use a worker's web server: anyone on the machine while it listens on loopback (the default);
only holders of ``worker.token`` once it listens anywhere else.

With a token, every path but ``/health`` and ``/metrics`` (probes and Prometheus) needs it: as
``Authorization: Bearer <token>``, or, for a browser, once as ``/live/?token=<token>``, which sets an
HttpOnly, SameSite=Strict cookie and redirects to ``/live/`` (the token leaves the address bar; the
page's own requests carry the cookie).
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable

from aiohttp import web

OPEN_PATHS = ("/health", "/metrics")
COOKIE = "sentimon_token"


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


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
