"""Local HTTP servers speaking what the notifiers talk to: Telegram's Bot API `sendMessage`
and a JSON webhook receiver that checks the HMAC signature. Real aiohttp servers on
loopback, port 0, in the test's event loop, with faults to inject: answer 5xx (or 429)
the next n times, hang until released, refuse for good."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web


@dataclass
class Faults:
    """What the server does with the next requests, before answering normally."""

    fail_next: int = 0  # answer `fail_status` this many times
    fail_status: int = 500
    retry_after: int | None = None  # sent with 429s
    hang: bool = False  # hold every request until `release` is set
    release: asyncio.Event = field(default_factory=asyncio.Event)
    refuse_all: int | None = None  # answer this status to everything


class LocalServer:
    """An aiohttp app on 127.0.0.1:<free port>; `received` keeps what it accepted and
    `attempts` counts every request, answered or not."""

    def __init__(self) -> None:
        self.faults = Faults()
        self.received: list[dict[str, Any]] = []
        self.attempts = 0
        self.bodies: list[bytes] = []  # every raw request body, accepted or not
        self.raw_paths: list[str] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def __aexit__(self, *_: object) -> None:
        self.faults.release.set()
        assert self._runner is not None
        await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _fault(self) -> web.Response | None:
        """The faulty answer for this request, if any (after hanging, if asked to)."""
        self.attempts += 1
        faults = self.faults
        if faults.hang:
            await faults.release.wait()
        if faults.refuse_all is not None:
            return self.error(faults.refuse_all)
        if faults.fail_next > 0:
            faults.fail_next -= 1
            return self.error(faults.fail_status, faults.retry_after)
        return None

    def error(self, status: int, retry_after: int | None = None) -> web.Response:
        return web.json_response({"error": status}, status=status)


class TelegramServer(LocalServer):
    """`POST /bot<token>/sendMessage` with JSON {chat_id, text}, as the Bot API answers it:
    {"ok": true, "result": {...}}; a wrong token is 401, a missing field 400."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/bot{token}/sendMessage", self.send_message)

    def error(self, status: int, retry_after: int | None = None) -> web.Response:
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": f"E{status}"}
        if retry_after is not None:
            body["parameters"] = {"retry_after": retry_after}
        return web.json_response(body, status=status)

    async def send_message(self, request: web.Request) -> web.Response:
        self.raw_paths.append(request.path)
        raw = await request.read()
        self.bodies.append(raw)
        faulty = await self._fault()
        if faulty is not None:
            return faulty
        if request.match_info["token"] != self.token:
            return self.error(401)
        message = json.loads(raw)
        if not message.get("chat_id") or not message.get("text"):
            return self.error(400)
        self.received.append(message)
        result = {"message_id": len(self.received), "chat": {"id": message["chat_id"]}}
        return web.json_response({"ok": True, "result": result | {"text": message["text"]}})

    def texts(self) -> list[str]:
        return [m["text"] for m in self.received]


class WebhookServer(LocalServer):
    """`POST /hook` with a JSON body; with a key, `X-Tradepipe-Signature` must be the
    HMAC-SHA256 of the body (else 401)."""

    def __init__(self, key: str | None = None) -> None:
        super().__init__()
        self.key = key

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/hook", self.hook)

    @property
    def url(self) -> str:
        return f"{self.base_url}/hook"

    async def hook(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.bodies.append(raw)
        faulty = await self._fault()
        if faulty is not None:
            return faulty
        if self.key is not None:
            expected = "sha256=" + hmac.new(self.key.encode(), raw, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(request.headers.get("X-Tradepipe-Signature", ""), expected):
                return self.error(401)
        self.received.append(json.loads(raw))
        return web.json_response({"received": True})

    def categories(self) -> list[str]:
        return [m["category"] for m in self.received]
