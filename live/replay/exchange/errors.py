"""A refused request of the exchange simulator, as Binance words it."""

from __future__ import annotations

from typing import Any

__all__ = ["BinanceError"]


class BinanceError(Exception):
    """A refused request: Binance's `code` and `msg`, and the HTTP status it answers with."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.status = status

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "msg": self.msg}
