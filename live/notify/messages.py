"""What operators are told: engine and order events turned into notifications.

Two sources feed notifications: the engine's `EventBus` (bot errors, model swaps, strategy
reloads...) and the order state machine's events (a position opened is an entry, a
position closed after it opened is an exit, a rejected order is an error). Each maps to at
most one `NotifyCategory`, the vocabulary bots subscribe with; events of no category (a
heartbeat, an order accepted) are never sent. The text is the human line a chat shows;
`data` carries the same facts for machines (the webhook body). Both pass through
`tradepipe.secrets.redact` when sent, a second line of defence: events never hold secrets.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from live.engine.events import EngineEvent
from tradepipe.notifications import NotifyCategory
from tradepipe.orders import Anomaly, Event, OrderRejected, PositionClosed, PositionOpened

__all__ = ["Notification", "engine_category", "from_engine_event", "from_order_event"]

# Telegram refuses longer messages; chats gain nothing from more.
MAX_TEXT = 4000

_MODEL_SWAPS = {"model_swapped", "model_refused", "model_guard_breached"}
# A bot switched to a new version of its strategy file, or off a deleted one.
_STRATEGY_MOVES = {"bot_reloaded", "bot_fell_back"}
_ERROR_KINDS = {
    "anomaly",
    "bot_error",
    "database_unavailable",
    "engine_degraded",
    "risk_limit_hit",  # a bot stopped entering: its daily loss limit or max drawdown
    "circuit_open",  # a bot stopped entering: venue errors in a row
}
# A venue's rejection also reaches the bot's book, whose OrderRejected is notified: once.
_TOLD_BY_THE_BOOK = {"order_rejected"}
_ERROR_SUFFIXES = ("_error", "_failed", "_unavailable", "_rejected", "_mismatch", "_unknown")


@dataclass(frozen=True, slots=True)
class Notification:
    """One message for the notifiers; `id` lets a receiver drop a redelivered duplicate."""

    category: NotifyCategory
    kind: str
    text: str
    bot: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "category": self.category.value,
            "kind": self.kind,
            "bot": self.bot,
            "text": self.text,
            "data": dict(self.data),
            "at": self.at.isoformat(),
        }


def engine_category(event: EngineEvent) -> NotifyCategory | None:
    """The category of an engine event, None for the ones operators are not told about.
    Strategy events come first: a strategy that fails to reload is a strategy change."""
    kind = event.kind
    if kind in _TOLD_BY_THE_BOOK:
        return None
    if (
        kind.startswith("strategy_")
        or kind in _STRATEGY_MOVES
        or (kind == "bot_updated" and _strategy_changed(event))
    ):
        return NotifyCategory.STRATEGY_CHANGES
    if kind in _MODEL_SWAPS:
        return NotifyCategory.MODEL_SWAPS
    if kind in _ERROR_KINDS or kind.endswith(_ERROR_SUFFIXES):
        return NotifyCategory.ERRORS
    return None


def _strategy_changed(event: EngineEvent) -> bool:
    # `changed` lists the bots-table fields that changed; empty means the file was edited
    changed = event.data.get("changed") or []
    return not changed or "strategy" in changed


def from_engine_event(event: EngineEvent) -> Notification | None:
    category = engine_category(event)
    if category is None:
        return None
    prefix = f"{event.bot}: " if event.bot else ""
    return Notification(
        category,
        event.kind,
        _clip(f"{prefix}{event.kind.replace('_', ' ')}: {event.message}"),
        event.bot,
        _json_safe(event.data),
        event.at,
    )


def from_order_event(event: Event, symbol: str) -> Notification | None:
    """Entries, exits and order errors of one bot; None for every other order event."""
    at = datetime.fromtimestamp(event.time_ms / 1000, UTC)
    if isinstance(event, PositionOpened):
        position = event.position
        price = position.entry_price
        data = {
            "symbol": symbol,
            "side": position.side.value,
            "quantity": position.quantity,
            "price": price,
            "position": position.seq,
            "client_order_id": position.entry.client_order_id,
            "take_profit_price": position.take_profit_price,
            "stop_loss_price": position.stop_loss_price,
        }
        text = (
            f"{event.bot}: entry {position.side.value} {position.quantity:g} {symbol} at "
            f"{_price(price)} (position {position.seq})"
        )
        return Notification(NotifyCategory.ENTRIES, event.kind, text, event.bot, data, at)
    if isinstance(event, PositionClosed):
        position = event.position
        if position.opened_at_ms is None:
            return None  # an entry that never filled: nothing was held, nothing exited
        reason = event.exit_reason.value
        data = {
            "symbol": symbol,
            "side": position.side.value,
            "quantity": position.quantity,
            "entry_price": position.entry_price,
            "exit_price": position.exit_price,
            "exit_reason": reason,
            "net_pnl": event.net_pnl,
            "position": position.seq,
        }
        text = (
            f"{event.bot}: exit {symbol} ({reason}) at {_price(position.exit_price)}, "
            f"net PnL {event.net_pnl:+.6g} (position {position.seq})"
        )
        return Notification(NotifyCategory.EXITS, event.kind, text, event.bot, data, at)
    if isinstance(event, OrderRejected):
        order = event.order
        data = {"symbol": symbol, "client_order_id": order.client_order_id}
        data["message"] = event.message
        text = f"{event.bot}: order {order.client_order_id} rejected: {event.message}"
        return Notification(NotifyCategory.ERRORS, event.kind, _clip(text), event.bot, data, at)
    if isinstance(event, Anomaly):
        data = {"symbol": symbol, "client_order_id": event.client_order_id}
        data["message"] = event.message
        text = f"{event.bot}: anomaly: {event.message}"
        return Notification(NotifyCategory.ERRORS, event.kind, _clip(text), event.bot, data, at)
    return None


def _price(price: float | None) -> str:
    return "?" if price is None else f"{price:g}"


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _json_safe(data: Mapping[str, Any]) -> dict[str, Any]:
    """Engine event data is JSON-able by contract; anything else is shown as text."""
    safe: dict[str, Any] = {}
    for key, value in data.items():
        if value is None or isinstance(value, bool | int | float | str):
            safe[str(key)] = value
        elif isinstance(value, list | tuple):
            safe[str(key)] = [
                v if isinstance(v, bool | int | float | str) else str(v) for v in value
            ]
        else:
            safe[str(key)] = str(value)
    return safe
