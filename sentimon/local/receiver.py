"""A webhook receiver that does what a trading desk's should: verify the Standard Webhooks signature,
deduplicate on ``webhook-id``, answer 2xx fast. ``sentimon alerts receive`` runs it; the tests, the
demo and the alerts benchmark use it as the real HTTP endpoint on loopback.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


@dataclass
class Received:
    id: str
    payload: dict[str, Any]
    at: float  # time.time() when it arrived


@dataclass
class Inbox:
    """What arrived: each notification once (by id), how many duplicates and bad signatures were refused."""

    unique: dict[str, Received] = field(default_factory=dict)
    duplicates: int = 0
    rejected: int = 0

    def alerts(self, status: str | None = None) -> list[tuple[Received, dict]]:
        return [(r, a) for r in self.unique.values() for a in r.payload.get("alerts", [])
                if status is None or a["status"] == status]


class WebhookReceiver:
    """An aiohttp server on ``host:port`` in its own thread; ``stop()`` and ``start()`` again on the same
    port to play a receiver that is down for a while."""

    def __init__(self, secret: str, host: str = "127.0.0.1", port: int = 0, path: str = "/hook",
                 on_receive=None):
        self.webhook = Webhook(secret)
        self.host, self.port, self.path = host, port, path
        self.inbox = Inbox()
        self.on_receive = on_receive
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{self.path}"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            payload = self.webhook.verify(body, dict(request.headers))
        except Exception as exc:  # noqa: BLE001 - any header the library cannot read is a bad signature: 401
            with self._lock:
                self.inbox.rejected += 1
            why = str(exc) if isinstance(exc, WebhookVerificationError) else "malformed signature headers"
            return web.json_response({"error": f"signature: {why}"}, status=401)
        if not isinstance(payload, dict):  # signed, but not a notification
            return web.json_response({"error": "the body is not a JSON object"}, status=400)
        msg_id = request.headers["webhook-id"]
        with self._lock:
            if msg_id in self.inbox.unique:
                self.inbox.duplicates += 1
            else:
                self.inbox.unique[msg_id] = Received(msg_id, payload, time.time())
                if self.on_receive:
                    self.on_receive(self.inbox.unique[msg_id])
        return web.json_response({"ok": True})

    def start(self) -> "WebhookReceiver":
        ready = threading.Event()

        def run() -> None:
            loop = self._loop = asyncio.new_event_loop()
            app = web.Application()
            app.router.add_post(self.path, self._handle)
            self._runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
            loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True, name="webhook-receiver")
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError(f"webhook receiver did not start on {self.host}:{self.port}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = self._thread = None

    def __enter__(self) -> "WebhookReceiver":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
