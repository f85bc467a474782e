"""Who may call what.

Mutating routes (POST, DELETE) always need `Authorization: Bearer <token>`; with no token
configured they refuse (403) rather than run open: control is never on by default.
Read-only routes are open to loopback clients (the host's health check and a local
Prometheus); from any other address they need the token as well, so binding the API to a
public interface does not expose positions and bot names to the network.
The token is compared in constant time and never appears in a response or a log line.
"""

from __future__ import annotations

import hmac
import ipaddress

from fastapi import Request

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

    def _check(self, request: Request) -> None:
        if self._token is None:
            raise ApiError(403, NO_TOKEN_MESSAGE)
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise ApiError(
                401, "missing bearer token: send Authorization: Bearer <token>", _CHALLENGE
            )
        if not hmac.compare_digest(given.strip().encode(), self._token):
            raise ApiError(401, "invalid bearer token", _CHALLENGE)

    async def control(self, request: Request) -> None:
        """Dependency of every mutating route."""
        self._check(request)

    async def read(self, request: Request) -> None:
        """Dependency of every read-only route: open on loopback, token elsewhere."""
        if not _is_loopback(request.client.host if request.client else None):
            self._check(request)
