"""Which exchanges bots may name, and whether a venue lists a symbol.

The live engine trades one venue family, Binance spot (its feed, its REST side, its ccxt
broker): a bot naming another exchange would silently trade Binance data, so it is refused.
Whether a symbol exists is the venue's word, asked over its REST API
(`GET /api/v3/exchangeInfo?symbol=`), which the replay server and the exchange simulator
answer too. `bots add` asks before writing a bot; the engine asks again before starting one.

Synchronous on purpose (stdlib `urllib`, no session to close): it is asked once per bot
add or bot start; the engine runs it in a worker thread.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

__all__ = [
    "LIVE_EXCHANGES",
    "SymbolListError",
    "UnsupportedExchangeError",
    "check_exchange",
    "listed_symbol_status",
    "symbol_problem",
]

LIVE_EXCHANGES = ("binance",)
# Binance answers an unknown symbol with HTTP 400 and this code.
INVALID_SYMBOL_CODE = -1121
# A full exchangeInfo (a venue that ignores ?symbol=) is a few MB; refuse anything absurd.
MAX_ANSWER_BYTES = 64 * 1024 * 1024


class UnsupportedExchangeError(ValueError):
    """An exchange the live engine cannot trade."""


class SymbolListError(RuntimeError):
    """The venue could not be asked (unreachable, or an answer that is not exchangeInfo)."""


def check_exchange(exchange: str) -> str:
    """The normalised exchange id, if the engine trades it."""
    normalised = exchange.strip().lower()
    if normalised not in LIVE_EXCHANGES:
        raise UnsupportedExchangeError(
            f"exchange {exchange!r} is not supported: the engine trades {', '.join(LIVE_EXCHANGES)}"
        )
    return normalised


def listed_symbol_status(
    rest_url: str, symbol: str, *, timeout_seconds: float = 10.0
) -> str | None:
    """The venue's status of `symbol` (`TRADING`, `BREAK`, ...), or None if it does not list
    it. Raises SymbolListError when the venue cannot be asked."""
    query = urllib.parse.urlencode({"symbol": symbol})
    url = f"{rest_url.rstrip('/')}/api/v3/exchangeInfo?{query}"
    try:
        with urllib.request.urlopen(url, timeout=timeout_seconds) as answer:
            body = answer.read(MAX_ANSWER_BYTES + 1)
    except urllib.error.HTTPError as error:
        if error.code == 400 and _error_code(error) == INVALID_SYMBOL_CODE:
            return None
        raise SymbolListError(f"{url}: HTTP {error.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise SymbolListError(f"{url}: {reason}") from None
    if len(body) > MAX_ANSWER_BYTES:
        raise SymbolListError(f"{url}: answer over {MAX_ANSWER_BYTES} bytes")
    try:
        entries = json.loads(body)["symbols"]
        statuses = {str(entry["symbol"]): str(entry.get("status", "")) for entry in entries}
    except (ValueError, KeyError, TypeError):
        raise SymbolListError(f"{url}: not an exchangeInfo answer") from None
    return statuses.get(symbol)


def symbol_problem(exchange: str, symbol: str, status: str | None) -> str | None:
    """Why a bot cannot trade `symbol` given the venue's `status` of it, or None."""
    if status is None:
        return f"symbol {symbol} is not listed on {exchange}"
    if status != "TRADING":
        return f"symbol {symbol} is not trading on {exchange} (status {status})"
    return None


def _error_code(error: urllib.error.HTTPError) -> Any:
    try:
        return json.loads(error.read(65_536)).get("code")
    except (ValueError, AttributeError, OSError):
        return None
