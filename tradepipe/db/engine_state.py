"""What the live engine needs to resume after a restart or a crash, and its global switches.

- `BotState`: one row per bot, the serialized position book (`PositionBook.to_dict`: open
  positions with their barriers and deadlines, the next position number behind the
  deterministic client order ids) and the strategy's own state (`Strategy.on_save`). The
  engine writes it in the same transaction as the order, position and fill rows it
  derives from, so the book and the tables can never disagree after a crash.
- `EngineControl`: named switches every engine reads on each poll, e.g. the kill switch;
  kept in the database so that a switch survives restarts and reaches every engine.

- `BotLease`: which engine owns a bot (PostgreSQL only, several engines sharing the bots):
  the owner's engine id, the fencing epoch (incremented at each takeover; every bot write
  carries it and is refused unless it still matches) and when the lease expires unless
  renewed. Claimed and checked in tradepipe/db/leases.py.

Introduced by migrations 0002 and 0005; kept out of models.py because only the engine
writes them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from tradepipe.db.base import Base
from tradepipe.db.types import IdType, UTCDateTime, utcnow

__all__ = ["KILL_SWITCH", "BotLease", "BotState", "EngineControl"]

KILL_SWITCH = "kill_switch"


class BotState(Base):
    """The resumable state of one bot (see the module docstring)."""

    __tablename__ = "bot_states"

    bot_id: Mapped[int] = mapped_column(
        IdType, sa.ForeignKey("bots.id", ondelete="CASCADE"), primary_key=True
    )
    book: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    strategy_state: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    # The strategy the state belongs to: state is handed over only to the same strategy.
    strategy_name: Mapped[str | None] = mapped_column(sa.String(128))
    strategy_hash: Mapped[str | None] = mapped_column(sa.String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class EngineControl(Base):
    """A named switch, e.g. `kill_switch` -> {"engaged": true, "reason": "..."}."""

    __tablename__ = "engine_controls"

    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    updated_by: Mapped[str | None] = mapped_column(sa.String(128))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class BotLease(Base):
    """One engine's claim on one bot until `expires_at` (see the module docstring)."""

    __tablename__ = "bot_leases"

    bot_id: Mapped[int] = mapped_column(
        IdType, sa.ForeignKey("bots.id", ondelete="CASCADE"), primary_key=True
    )
    owner: Mapped[str] = mapped_column(sa.String(64))
    epoch: Mapped[int] = mapped_column(sa.BigInteger)
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime())
    renewed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
