"""Reviews of live bots against a backtest of the same recorded market.

`tradepipe live review` (and the `live_review` DAG) replays a bot's recorded candles
through the backtester and keeps what it found here: the bot, the range of candles
reviewed, and the review's summary (the JSON the command prints: features and decisions
equal, positions matched, every divergence with its cause). One row per review run; the
dashboard's Reviews page lists them. Introduced by migration 0004.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from tradepipe.db.base import Base
from tradepipe.db.types import IdType, UTCDateTime, utcnow

__all__ = ["LiveReview", "LiveReviewView", "list_live_reviews", "record_live_review"]


class LiveReview(Base):
    __tablename__ = "live_reviews"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    bot_name: Mapped[str] = mapped_column(sa.String(128))
    range_start: Mapped[datetime] = mapped_column(UTCDateTime())
    range_end: Mapped[datetime] = mapped_column(UTCDateTime())
    summary: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (sa.Index("ix_live_reviews_bot_name_created_at", "bot_name", "created_at"),)


def record_live_review(
    session: Session,
    bot: str,
    range_start: datetime,
    range_end: datetime,
    summary: dict[str, Any],
    *,
    replace: bool = False,
) -> int:
    """Keep one review; returns its id. With `replace`, the review of the same bot and
    range is overwritten (a scheduled task re-run for its interval writes one row)."""
    row = None
    if replace:
        row = session.scalars(
            sa.select(LiveReview).where(
                LiveReview.bot_name == bot,
                LiveReview.range_start == range_start,
                LiveReview.range_end == range_end,
            )
        ).first()
    if row is None:
        row = LiveReview(bot_name=bot, range_start=range_start, range_end=range_end)
        session.add(row)
    row.summary = summary
    session.flush()
    return row.id


@dataclass(frozen=True, slots=True)
class LiveReviewView:
    id: int
    bot_name: str
    range_start: datetime
    range_end: datetime
    summary: dict[str, Any]  # the review's JSON (`tradepipe live review --json`)
    created_at: datetime

    @property
    def divergences(self) -> list[dict[str, Any]]:
        found = self.summary.get("divergences")
        return list(found) if isinstance(found, list) else []


def list_live_reviews(
    session: Session, *, bot: str | None = None, limit: int = 100
) -> tuple[LiveReviewView, ...]:
    """Reviews, newest first (of `bot` if given)."""
    query = sa.select(LiveReview)
    if bot is not None:
        query = query.where(LiveReview.bot_name == bot)
    query = query.order_by(LiveReview.created_at.desc(), LiveReview.id.desc()).limit(limit)
    return tuple(
        LiveReviewView(
            row.id, row.bot_name, row.range_start, row.range_end, dict(row.summary), row.created_at
        )
        for row in session.scalars(query)
    )
