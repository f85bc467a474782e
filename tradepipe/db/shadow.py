"""Shadow results of a `challenger` model: what it would have traded, kept apart from trading.

The live engine runs a challenger version next to the champion for every bot consuming the
model (live/engine/shadow.py): same candles, same feature rows, the bot's strategy with the
challenger's probability, its own order book filled on paper. Nothing of it reaches a
broker, and nothing of it is in the `orders` or `positions` tables: it is here.

- `shadow_runs`: one row per (bot, model, challenger version, start): the strategy hash it
  ran with, when it started, how many decisions and entries it took. An engine restart
  starts a new run (shadow books live in memory only), so counters and position sequences
  of one run never mix with another's; the gate sums over runs.
- `shadow_positions`: the positions of a shadow run, upserted from their snapshots by
  (run, sequence), closed ones with their exit reason, fees and PnL (before fees, as in
  `positions`).

`shadow_summary` and `live_summary` are the two sides of the lifecycle's shadow gate
(research/training/shadow_gate.py): the challenger's closed shadow positions and the
champion's closed live positions of the same bots over the same window. Introduced by
migration 0006.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from tradepipe.db.base import Base
from tradepipe.db.models import HASH, NAME, REF, SYMBOL, Bot, Position
from tradepipe.db.types import IdType, UTCDateTime
from tradepipe.enums import PositionStatus

__all__ = [
    "ShadowPosition",
    "ShadowPositionRecord",
    "ShadowRecord",
    "ShadowRun",
    "ShadowRunView",
    "TradeSummary",
    "list_shadow_positions",
    "list_shadow_runs",
    "live_summary",
    "record_shadow",
    "shadow_summary",
]


class ShadowRun(Base):
    __tablename__ = "shadow_runs"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    bot_name: Mapped[str] = mapped_column(sa.String(NAME))
    model_name: Mapped[str] = mapped_column(sa.String(256))
    model_version: Mapped[str] = mapped_column(sa.String(REF))
    symbol: Mapped[str] = mapped_column(sa.String(SYMBOL))
    strategy_hash: Mapped[str] = mapped_column(sa.String(HASH))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decisions: Mapped[int] = mapped_column(sa.Integer, default=0)
    entries: Mapped[int] = mapped_column(sa.Integer, default=0)

    __table_args__ = (
        sa.UniqueConstraint("bot_name", "model_name", "model_version", "started_at"),
        sa.Index("ix_shadow_runs_model_name_model_version", "model_name", "model_version"),
    )


class ShadowPosition(Base):
    __tablename__ = "shadow_positions"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    run_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("shadow_runs.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(sa.Integer)
    side: Mapped[str] = mapped_column(sa.String(8))
    status: Mapped[str] = mapped_column(sa.String(16))
    quantity: Mapped[float] = mapped_column(sa.Float)
    entry_price: Mapped[float | None] = mapped_column(sa.Float)
    exit_price: Mapped[float | None] = mapped_column(sa.Float)
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    exit_reason: Mapped[str | None] = mapped_column(sa.String(32))
    fees: Mapped[float] = mapped_column(sa.Float, default=0.0)
    realised_pnl: Mapped[float] = mapped_column(sa.Float, default=0.0)  # before fees

    __table_args__ = (sa.UniqueConstraint("run_id", "seq"),)


@dataclass(frozen=True, slots=True)
class ShadowPositionRecord:
    """A shadow position's snapshot (times in ms on the market clock)."""

    seq: int
    side: str
    status: str
    quantity: float
    entry_price: float | None
    exit_price: float | None
    placed_ms: int
    opened_ms: int | None
    closed_ms: int | None
    exit_reason: str | None
    fees: float
    realised_pnl: float


@dataclass(frozen=True, slots=True)
class ShadowRecord:
    """What one engine step changed of one bot's shadow run: its counters (totals, not
    increments, so applying a record twice changes nothing) and the positions it touched."""

    bot: str
    model_name: str
    model_version: str
    symbol: str
    strategy_hash: str
    started_ms: int
    time_ms: int
    decisions: int
    entries: int
    positions: tuple[ShadowPositionRecord, ...] = field(default=())


def _at(time_ms: int | None) -> datetime | None:
    return None if time_ms is None else datetime.fromtimestamp(time_ms / 1000, UTC)


def record_shadow(session: Session, record: ShadowRecord) -> int:
    """Upsert the run and its positions; returns the run's id."""
    started = _at(record.started_ms)
    assert started is not None
    run = session.scalars(
        sa.select(ShadowRun).where(
            ShadowRun.bot_name == record.bot,
            ShadowRun.model_name == record.model_name,
            ShadowRun.model_version == record.model_version,
            ShadowRun.started_at == started,
        )
    ).first()
    if run is None:
        run = ShadowRun(
            bot_name=record.bot,
            model_name=record.model_name,
            model_version=record.model_version,
            started_at=started,
        )
        session.add(run)
    run.symbol, run.strategy_hash = record.symbol, record.strategy_hash
    run.updated_at = _at(record.time_ms) or started
    run.decisions = max(run.decisions or 0, record.decisions)
    run.entries = max(run.entries or 0, record.entries)
    session.flush()
    for position in record.positions:
        row = session.scalars(
            sa.select(ShadowPosition).where(
                ShadowPosition.run_id == run.id, ShadowPosition.seq == position.seq
            )
        ).first()
        if row is None:
            row = ShadowPosition(run_id=run.id, seq=position.seq)
            session.add(row)
        _copy(row, position)
    session.flush()
    return run.id


def _copy(row: ShadowPosition, position: ShadowPositionRecord) -> None:
    row.side, row.status, row.quantity = position.side, position.status, position.quantity
    row.entry_price, row.exit_price = position.entry_price, position.exit_price
    row.placed_at = _at(position.placed_ms) or datetime.now(UTC)
    row.opened_at, row.closed_at = _at(position.opened_ms), _at(position.closed_ms)
    row.exit_reason, row.fees, row.realised_pnl = (
        position.exit_reason,
        position.fees,
        position.realised_pnl,
    )


# -- reading ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShadowRunView:
    id: int
    bot_name: str
    model_name: str
    model_version: str
    symbol: str
    strategy_hash: str
    started_at: datetime
    updated_at: datetime
    decisions: int
    entries: int
    open_positions: int
    closed_positions: int
    net_pnl: float  # closed positions, after fees

    def to_dict(self) -> dict[str, Any]:
        return {
            name: value.isoformat() if isinstance(value, datetime) else value
            for name, value in ((n, getattr(self, n)) for n in self.__slots__)
        }


def list_shadow_runs(
    session: Session, *, model_name: str | None = None, limit: int = 200
) -> tuple[ShadowRunView, ...]:
    """Shadow runs, most recently updated first, with their position counts and net PnL."""
    closed = ShadowPosition.status == PositionStatus.CLOSED.value
    figures = (
        sa.select(
            ShadowPosition.run_id,
            sa.func.count().filter(sa.not_(closed)).label("open"),
            sa.func.count().filter(closed).label("closed"),
            sa.func.coalesce(
                sa.func.sum(ShadowPosition.realised_pnl - ShadowPosition.fees).filter(closed), 0.0
            ).label("net"),
        )
        .group_by(ShadowPosition.run_id)
        .subquery()
    )
    query = sa.select(
        ShadowRun, figures.c.open.label("open"), figures.c.closed, figures.c.net
    ).outerjoin(figures, figures.c.run_id == ShadowRun.id)
    if model_name is not None:
        query = query.where(ShadowRun.model_name == model_name)
    query = query.order_by(ShadowRun.updated_at.desc(), ShadowRun.id.desc()).limit(limit)
    found = [(row[0], row[1], row[2], row[3]) for row in session.execute(query)]
    return tuple(
        ShadowRunView(
            run.id,
            run.bot_name,
            run.model_name,
            run.model_version,
            run.symbol,
            run.strategy_hash,
            run.started_at,
            run.updated_at,
            run.decisions,
            run.entries,
            int(open_count or 0),
            int(closed_count or 0),
            float(net or 0.0),
        )
        for run, open_count, closed_count, net in found
    )


def list_shadow_positions(session: Session, run_id: int) -> list[dict[str, Any]] | None:
    """The positions of shadow run `run_id`, by sequence; None when there is no such run."""
    if session.get(ShadowRun, run_id) is None:
        return None
    rows = session.scalars(
        sa.select(ShadowPosition)
        .where(ShadowPosition.run_id == run_id)
        .order_by(ShadowPosition.seq)
    )
    return [
        {
            "seq": row.seq,
            "side": row.side,
            "status": row.status,
            "quantity": row.quantity,
            "entry_price": row.entry_price,
            "exit_price": row.exit_price,
            "opened_at": row.opened_at.isoformat() if row.opened_at else None,
            "closed_at": row.closed_at.isoformat() if row.closed_at else None,
            "exit_reason": row.exit_reason,
            "fees": row.fees,
            "net_pnl": row.realised_pnl - row.fees,
        }
        for row in rows
    ]


@dataclass(frozen=True, slots=True)
class TradeSummary:
    """Closed positions of one side of the shadow gate. `net_return_per_trade`: the mean of
    (PnL before fees - fees) / entry notional, in fractions (0.001 is 0.1 %)."""

    trades: int
    net_pnl: float
    net_return_per_trade: float | None
    bots: tuple[str, ...] = ()
    decisions: int = 0
    started_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "trades": self.trades,
            "net_pnl": self.net_pnl,
            "net_return_per_trade": self.net_return_per_trade,
            "bots": list(self.bots),
            "decisions": self.decisions,
            "started_at": self.started_at.isoformat() if self.started_at else None,
        }


def _summary(
    rows: Iterable[tuple[float, float, float | None, float]],
) -> tuple[int, float, float | None]:
    """(count, net PnL, mean net return) of (pnl, fees, entry price, quantity) rows."""
    count, net, returns = 0, 0.0, 0.0
    for pnl, fees, price, quantity in rows:
        count += 1
        net += pnl - fees
        notional = (price or 0.0) * quantity
        returns += (pnl - fees) / notional if notional > 0 else 0.0
    return count, net, (returns / count if count else None)


def shadow_summary(
    session: Session, model_name: str, version: str, until: datetime | None = None
) -> TradeSummary:
    """The challenger `version`'s shadow runs: closed positions (closed before `until`),
    total decisions, the bots and the earliest start."""
    runs = list(
        session.scalars(
            sa.select(ShadowRun).where(
                ShadowRun.model_name == model_name, ShadowRun.model_version == version
            )
        )
    )
    query = sa.select(
        ShadowPosition.realised_pnl,
        ShadowPosition.fees,
        ShadowPosition.entry_price,
        ShadowPosition.quantity,
    ).where(
        ShadowPosition.run_id.in_([run.id for run in runs]),
        ShadowPosition.status == PositionStatus.CLOSED.value,
    )
    if until is not None:
        query = query.where(ShadowPosition.closed_at <= until)
    count, net, mean = _summary(session.execute(query))
    return TradeSummary(
        trades=count,
        net_pnl=net,
        net_return_per_trade=mean,
        bots=tuple(sorted({run.bot_name for run in runs})),
        decisions=sum(run.decisions for run in runs),
        started_at=min((run.started_at for run in runs), default=None),
    )


def live_summary(
    session: Session, bots: Iterable[str], version: str, since: datetime, until: datetime
) -> TradeSummary:
    """The closed live positions of `bots` traded by model `version`, entered at or after
    `since` and closed by `until` (market times, as the shadow positions')."""
    names = sorted(set(bots))
    query = (
        sa.select(Position.realised_pnl, Position.fees, Position.entry_price, Position.quantity)
        .join(Bot, Bot.id == Position.bot_id)
        .where(
            Bot.name.in_(names),
            Position.model_version == version,
            Position.status == PositionStatus.CLOSED,
            Position.opened_at >= since,
            Position.closed_at <= until,
        )
    )
    count, net, mean = _summary(session.execute(query))
    return TradeSummary(count, net, mean, tuple(names))
