"""The gate every request body passes before a route sees it (a small ASGI middleware).

FastAPI reads and parses a route's JSON body before it runs the route's dependencies, so
a token dependency alone would let anyone make the engine read and parse a body. Here, for
every method that carries one (POST, PUT, PATCH, DELETE), in this order:

1. the control rule (live/api/auth.py): no or a wrong bearer token is refused (401, or 403
   with control disabled) before a byte of the body is read;
2. size: a declared `Content-Length` over `max_bytes` is refused at once, a body that
   grows past it while streaming too (413);
3. JSON: `NaN`, `Infinity` and `-Infinity` (which Python's parser accepts but JSON does
   not have) are refused with 422 and a message saying so, as are a body that is not JSON
   and one nested too deeply to parse. Without this a NaN reached the validation error,
   whose rendering refuses NaN itself: a 500.
The body that passes is handed to the app unchanged.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from live.api.auth import TokenGuard
from live.api.errors import ApiError

__all__ = ["DEFAULT_MAX_BODY_BYTES", "BodyGate"]

DEFAULT_MAX_BODY_BYTES = 64 * 1024  # the largest body a route takes is well under 1 KiB
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class _NotFinite(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _NotFinite(name)


class BodyGate:
    def __init__(
        self, app: ASGIApp, *, guard: TokenGuard, max_bytes: int = DEFAULT_MAX_BODY_BYTES
    ) -> None:
        self.app = app
        self.guard = guard
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        try:
            self.guard.check_control(HTTPConnection(scope))
            self._check_declared_size(scope)
            body = await self._read(receive)
            _check_json(body)
        except ApiError as refusal:
            response = JSONResponse(
                {"error": refusal.message},
                status_code=refusal.status_code,
                headers=refusal.headers,
            )
            await response(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    def _check_declared_size(self, scope: Scope) -> None:
        declared = HTTPConnection(scope).headers.get("content-length")
        if declared is None:
            return
        try:
            size = int(declared)
        except ValueError:
            raise ApiError(400, f"Content-Length {declared[:32]!r} is not a number") from None
        if size > self.max_bytes:
            raise ApiError(413, self._too_large())

    async def _read(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise ApiError(413, self._too_large())
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def _too_large(self) -> str:
        return f"request body over {self.max_bytes} bytes: the engine's requests are small JSON"


def _check_json(body: bytes) -> None:
    if not body.strip():
        return  # a route that needs a body says so itself (422)
    try:
        json.loads(body, parse_constant=_refuse_constant)
    except _NotFinite as constant:
        raise ApiError(
            422, f"{constant} is not a JSON number: send finite numbers (or a string)"
        ) from None
    except RecursionError:
        raise ApiError(422, "request body is nested too deeply") from None
    except ValueError as error:  # also UnicodeDecodeError
        raise ApiError(422, f"request body is not JSON: {error}") from None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the app the body already read, then the connection's own."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
