"""The live price of each market, as the engines publish it.

Every engine puts its last trade per symbol into its heartbeat (`detail["last_prices"]`:
`{symbol: {"exchange", "price", "time_ms"}}`, every `engine_heartbeat_seconds`), so every
reader (dashboard, API, CLI) marks open positions at the market, not at the last fill. A
price is used only from an engine whose beat is fresh (`DEFAULT_STALE_AFTER`); when no
engine is beating, readers fall back to the last fill and say so (see
`dashboard_queries.open_position_marks`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from tradepipe.db.queries import DEFAULT_STALE_AFTER, heartbeats
from tradepipe.enums import ComponentKind

__all__ = ["LIVE_PRICES", "LivePrice", "live_prices"]

LIVE_PRICES = "last_prices"  # the key of the engine heartbeat's detail


@dataclass(frozen=True, slots=True)
class LivePrice:
    exchange: str
    symbol: str
    price: float
    traded_at: datetime  # the trade's own (market) time
    engine_id: str
    beat_at: datetime  # when the engine published it

    def age_seconds(self, now: datetime | None = None) -> float:
        return ((now or datetime.now(UTC)) - self.traded_at).total_seconds()


def live_prices(
    session: Session, *, now: datetime | None = None, stale_after: timedelta = DEFAULT_STALE_AFTER
) -> dict[tuple[str, str], LivePrice]:
    """(exchange, symbol) -> the newest trade price a fresh engine published."""
    found: dict[tuple[str, str], LivePrice] = {}
    for beat in heartbeats(session, now=now, stale_after=stale_after):
        if beat.kind is not ComponentKind.ENGINE or beat.is_stale:
            continue
        published = beat.detail.get(LIVE_PRICES)
        for symbol, item in (published if isinstance(published, dict) else {}).items():
            price = _price(symbol, item, beat.engine_id, beat.beat_at)
            key = (price.exchange, symbol) if price else None
            if price and key and (key not in found or found[key].traded_at < price.traded_at):
                found[key] = price
    return found


def _price(symbol: str, item: object, engine_id: str, beat_at: datetime) -> LivePrice | None:
    """One published price, or None for anything malformed (the table is shared)."""
    if not isinstance(item, dict):
        return None
    price, time_ms, exchange = item.get("price"), item.get("time_ms"), item.get("exchange")
    if not isinstance(price, int | float) or not math.isfinite(price) or price <= 0:
        return None
    if not isinstance(time_ms, int) or not isinstance(exchange, str):
        return None
    traded_at = datetime.fromtimestamp(time_ms / 1000, UTC)
    return LivePrice(exchange, symbol, float(price), traded_at, engine_id, beat_at)
