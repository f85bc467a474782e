"""What a backtest returns: closed trades, entries that never filled, metrics, equity.

Both engines (`run_backtest` and the backtrader reference `run_backtrader`) return these
records, so comparing two runs is comparing two `BacktestResult`s field by field. Trades
are in the order they closed (ties by entry time), so two engines list them identically
whatever order they happened to process simultaneous exits in.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, NamedTuple

import pandas as pd

from tradepipe.enums import OrderRole
from tradepipe.orders import Position
from tradepipe.risk import RiskBreach

__all__ = [
    "BacktestMetrics",
    "BacktestResult",
    "Fill",
    "TradeRecord",
    "UnfilledEntry",
    "iso_utc",
]


def iso_utc(time_ms: int) -> str:
    """ISO-8601 UTC with milliseconds, e.g. 2024-01-01T00:01:00.000Z (one fixed width, so
    the strings sort as the times do)."""
    stamp = pd.Timestamp(time_ms, unit="ms", tz="UTC")
    return f"{stamp:%Y-%m-%dT%H:%M:%S}.{time_ms % 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class TradeRecord:
    """One closed position: entry fill to exit fill. `pnl` is net of both fees; times are
    the fill model's stamps (a fill at a candle's open is stamped at its start, a fill
    inside it or at its close at its end)."""

    entry_time_ms: int
    exit_time_ms: int
    side: str
    entry_price: float
    exit_price: float
    quantity: float
    exit_reason: str
    pnl: float
    fees: float

    @classmethod
    def from_position(cls, position: Position) -> TradeRecord:
        """The trade of a closed kernel position (the fast engine's source of truth)."""
        assert position.opened_at_ms is not None and position.closed_at_ms is not None
        assert position.entry_price is not None and position.exit_price is not None
        assert position.exit_reason is not None
        return cls(
            entry_time_ms=position.opened_at_ms,
            exit_time_ms=position.closed_at_ms,
            side=position.side.value,
            entry_price=position.entry_price,
            exit_price=position.exit_price,
            quantity=position.quantity,
            exit_reason=position.exit_reason.value,
            pnl=position.net_pnl,
            fees=position.fees,
        )


@dataclass(frozen=True, slots=True)
class UnfilledEntry:
    """A limit entry cancelled without any fill (its maker-order timeout): no trade, no fee,
    but it held a position slot from `placed_at_ms` until `cancelled_at_ms`."""

    placed_at_ms: int
    cancelled_at_ms: int
    limit_price: float
    reason: str


class Fill(NamedTuple):
    """One fill as an engine saw it: on candle `row`, stamped `time_ms` by the fill model,
    of an order with `role` (an OrderRole value: entry, take_profit, stop_loss,
    timeout_exit)."""

    row: int
    time_ms: int
    role: str
    is_buy: bool
    price: float
    quantity: float
    fee: float

    @property
    def is_entry(self) -> bool:
        return self.role == OrderRole.ENTRY.value


def trade_order(trade: TradeRecord) -> tuple[Any, ...]:
    """Sort key: by exit, then entry, then every other field (a total order)."""
    return (
        trade.exit_time_ms,
        trade.entry_time_ms,
        trade.side,
        trade.entry_price,
        trade.exit_price,
        trade.quantity,
        trade.exit_reason,
        trade.pnl,
        trade.fees,
    )


def unfilled_order(entry: UnfilledEntry) -> tuple[Any, ...]:
    return (entry.cancelled_at_ms, entry.placed_at_ms, entry.limit_price, entry.reason)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass(frozen=True, slots=True)
class BacktestMetrics:
    """Summary figures; see `research.backtest.metrics` for every formula.

    `to_dict` turns the non-finite values (a profit factor without losing trades, a Sortino
    ratio without a losing candle) into None, so the dict is valid JSON and an MLflow metric
    logger can skip them instead of failing.
    """

    total_return: float
    sharpe: float
    sortino: float
    max_drawdown: float
    win_rate: float
    profit_factor: float
    exposure: float
    trades: int
    fees: float
    open_positions: int
    unfilled_entries: int = 0
    final_equity: float = 0.0

    def to_dict(self) -> dict[str, float | int | None]:
        return {item.name: _json_safe(getattr(self, item.name)) for item in fields(self)}


@dataclass(frozen=True)
class BacktestResult:
    """A backtest's outcome.

    `equity` is indexed by candle start_ms: cash plus open positions marked at each
    candle's close, after that candle's fills. `open_positions` are the positions still open
    (active, or entries waiting to fill) after the last candle: they are not force-closed,
    so they are not in `trades`, but their entry fees and marks are in the equity.
    """

    trades: tuple[TradeRecord, ...]
    equity: pd.Series
    metrics: BacktestMetrics
    unfilled_entries: tuple[UnfilledEntry, ...] = ()
    open_positions: tuple[Position, ...] = field(default=())
    initial_capital: float = 0.0
    fills: tuple[Fill, ...] = ()  # every fill, in (row, time, role) order
    # the bot's risk limits (tradepipe/risk.py): each limit crossed, and the entries the
    # strategy asked for that the limits refused
    risk_breaches: tuple[RiskBreach, ...] = ()
    entries_refused: int = 0

    def trades_frame(self) -> pd.DataFrame:
        """One row per trade; times as ISO-8601 UTC strings."""
        columns = [
            "entry_time",
            "exit_time",
            "side",
            "entry_price",
            "exit_price",
            "quantity",
            "exit_reason",
            "pnl",
            "fees",
        ]
        rows = []
        for trade in self.trades:
            values = asdict(trade)
            rows.append(
                [
                    iso_utc(trade.entry_time_ms),
                    iso_utc(trade.exit_time_ms),
                    *(values[name] for name in columns[2:]),
                ]
            )
        return pd.DataFrame(rows, columns=columns)
