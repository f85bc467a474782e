"""Who may call what.

Mutating routes (POST, DELETE) always need `Authorization: Bearer <token>`; with no token
configured they refuse (403) rather than run open: control is never on by default.
Read-only routes are open to loopback clients (the host's health check and a local
Prometheus); from any other address they need the token as well, so binding the API to a
public interface does not expose positions and bot names to the network.
The WebSocket `/ws/events` follows the read rule; since a browser cannot set headers on a
WebSocket, it may also carry the token as a `token` query parameter (only there: a URL ends
up in logs and histories more easily than a header; the API's own access log is off).
The token is compared in constant time and never appears in a response or a log line.
"""

from __future__ import annotations

import hmac
import ipaddress

from fastapi import Request
from starlette.requests import HTTPConnection

from live.api.errors import ApiError

__all__ = ["NO_TOKEN_MESSAGE", "TokenGuard"]

NO_TOKEN_MESSAGE = "control is disabled: set TRADEPIPE_ENGINE_API_TOKEN to enable control"
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def _is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class TokenGuard:
    def __init__(self, token: str | None) -> None:
        self._token = token.encode() if token else None

    def _check(self, connection: HTTPConnection, *, query_token: bool = False) -> None:
        if self._token is None:
            raise ApiError(403, NO_TOKEN_MESSAGE)
        scheme, _, given = connection.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            given = connection.query_params.get("token", "") if query_token else ""
            if not given.strip():
                how = "Authorization: Bearer <token>"
                if query_token:
                    how += " or ?token=<token>"
                raise ApiError(401, f"missing bearer token: send {how}", _CHALLENGE)
        if not hmac.compare_digest(given.strip().encode(), self._token):
            raise ApiError(401, "invalid bearer token", _CHALLENGE)

    async def control(self, request: Request) -> None:
        """Dependency of every mutating route."""
        self._check(request)

    def check_control(self, connection: HTTPConnection) -> None:
        """The control rule for any connection (the body gate checks it before a body
        is read: live/api/body_gate.py)."""
        self._check(connection)

    async def read(self, request: Request) -> None:
        """Dependency of every read-only route: open on loopback, token elsewhere."""
        self.check_read(request)

    def check_read(self, connection: HTTPConnection, *, query_token: bool = False) -> None:
        """The read rule for any connection; `query_token` also accepts `?token=`."""
        if not _is_loopback(connection.client.host if connection.client else None):
            self._check(connection, query_token=query_token)
