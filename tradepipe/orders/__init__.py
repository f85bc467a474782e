"""The order and position state machine that backtests and the live engine share.

- `PositionBook` (book.py): one bot's positions; decisions in, events out; no clock, no I/O.
- the fill model (rules.py, read its docstring): how orders fill against closed candles,
  also used by the triple-barrier labels in `tradepipe.labels`.
- records (types.py) and events (events.py): frozen, serialisable to plain dicts.
"""

from tradepipe.orders.barriers import (
    BarrierError,
    BarrierMove,
    barriers_of,
    check_barrier_prices,
    check_move,
)
from tradepipe.orders.book import PositionBook
from tradepipe.orders.events import (
    Anomaly,
    BarriersMoved,
    EntryRefused,
    Event,
    OrderAccepted,
    OrderCancelled,
    OrderCancelRequested,
    OrderFilled,
    OrderPlaced,
    OrderRejected,
    PositionClosed,
    PositionOpened,
    PositionPending,
    event_from_dict,
    event_to_dict,
)
from tradepipe.orders.rules import (
    EntryFill,
    ExitFill,
    barrier_prices,
    limit_entry_fill,
    market_fill_price,
    resolve_bar,
    resolve_candle,
    stop_touched,
    take_profit_touched,
)
from tradepipe.orders.serialise import StateError
from tradepipe.orders.types import (
    EntryRequest,
    FeeSchedule,
    InvalidOrderError,
    Liquidity,
    OrderState,
    Position,
    client_order_id,
    duration_ms,
    parse_client_order_id,
    venue_stop_order_id,
)

__all__ = [
    "Anomaly",
    "BarrierError",
    "BarrierMove",
    "BarriersMoved",
    "EntryFill",
    "EntryRefused",
    "EntryRequest",
    "Event",
    "ExitFill",
    "FeeSchedule",
    "InvalidOrderError",
    "Liquidity",
    "OrderAccepted",
    "OrderCancelRequested",
    "OrderCancelled",
    "OrderFilled",
    "OrderPlaced",
    "OrderRejected",
    "OrderState",
    "Position",
    "PositionBook",
    "PositionClosed",
    "PositionOpened",
    "PositionPending",
    "StateError",
    "barrier_prices",
    "barriers_of",
    "check_barrier_prices",
    "check_move",
    "client_order_id",
    "duration_ms",
    "event_from_dict",
    "event_to_dict",
    "limit_entry_fill",
    "market_fill_price",
    "parse_client_order_id",
    "resolve_bar",
    "resolve_candle",
    "stop_touched",
    "take_profit_touched",
    "venue_stop_order_id",
]
