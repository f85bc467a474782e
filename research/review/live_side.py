"""The live side of a review: the bot's decision log rows, its segments, its positions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from sqlalchemy.orm import Session

from research.review.compare import DecisionAnswer
from research.review.positions import ReviewedPosition, entry_candle
from tradepipe.db import PositionView, get_position, list_positions
from tradepipe.enums import OrderRole

__all__ = ["SegmentRows", "live_answers", "live_positions", "segments_of"]

_PAGE = 500
# what identifies one live version of a bot: a change of any starts a new segment
SEGMENT_KEYS = (
    "symbol",
    "timeframe",
    "strategy",
    "strategy_hash",
    "bot_config",
    "model",
    "model_version",
    "feature_spec_hash",
)


@dataclass(frozen=True)
class SegmentRows:
    key: dict[str, object]
    rows: pd.DataFrame  # the decision log rows of the segment, by candle


def segments_of(decisions: pd.DataFrame) -> list[SegmentRows]:
    """Consecutive runs of decisions taken by one version (SEGMENT_KEYS) of the bot."""
    keys = decisions[list(SEGMENT_KEYS)].astype(object).where(decisions.notna(), None)
    as_tuples = [tuple(row) for row in keys.itertuples(index=False)]
    segments: list[SegmentRows] = []
    start = 0
    for index in range(1, len(as_tuples) + 1):
        if index == len(as_tuples) or as_tuples[index] != as_tuples[start]:
            key = dict(zip(SEGMENT_KEYS, as_tuples[start], strict=True))
            rows = decisions.iloc[start:index].reset_index(drop=True)
            segments.append(SegmentRows(key, rows))
            start = index
    return segments


def live_answers(rows: pd.DataFrame) -> dict[int, tuple[DecisionAnswer, str | None]]:
    """The engine's answer per candle, with what became of the entry."""
    found: dict[int, tuple[DecisionAnswer, str | None]] = {}
    for start_ms, kind, limit, entry in zip(
        rows["candle_start_ms"], rows["decision"], rows["limit_price"], rows["entry"], strict=True
    ):
        price = None if kind != "enter" or pd.isna(limit) else float(limit)
        found[int(start_ms)] = (DecisionAnswer(str(kind), price), None if pd.isna(entry) else entry)
    return found


def _ms(moment: datetime | None) -> int | None:
    return None if moment is None else round(moment.timestamp() * 1000)


def live_positions(
    session: Session, bot: str, placed: Sequence[tuple[int, int]]
) -> list[ReviewedPosition]:
    """The bot's positions of the entries it placed in the range reviewed.

    `placed` are the (decided_ms, candle_start_ms) of the placed entries, oldest first.
    Positions are created in the order their entries were placed (ids grow), so the first
    position filled (or cancelled) after the first placed entry belongs to it, the next to
    the next one, and so on; positions after the last placed entry are outside the range.
    Where the order disagrees with the times (a decision row missing from the log), the
    latest entry decided before the position's first market time is taken instead."""
    if not placed:
        return []
    views: list[PositionView] = []
    offset = 0
    while True:
        page = list_positions(session, bot=bot, limit=_PAGE, offset=offset)
        views.extend(page)
        if len(page) < _PAGE:
            break
        offset += _PAGE
    first_decided = placed[0][0]
    candidates = []
    for view in sorted(views, key=lambda v: v.id):
        first_time = _ms(view.opened_at) or _ms(view.closed_at)
        if first_time is None or first_time >= first_decided:
            candidates.append((view, first_time))
    found = []
    for (view, first_time), (decided_ms, candle_ms) in zip(candidates, placed, strict=False):
        if first_time is not None and decided_ms > first_time:
            fallback = entry_candle(first_time, placed)
            if fallback is None:
                continue
            candle_ms = fallback
        found.append(_reviewed(session, view, candle_ms))
    return found


def _reviewed(session: Session, view: PositionView, candle_ms: int) -> ReviewedPosition:
    detail = get_position(session, view.id)
    assert detail is not None
    filled = [order for order in detail.orders if order.filled_quantity > 0]
    entry_order = next(o for o in detail.orders if o.role is OrderRole.ENTRY)
    exit_order = next((o for o in filled if o.role is not OrderRole.ENTRY), None)
    return ReviewedPosition(
        entry_candle_ms=candle_ms,
        entry_type=entry_order.order_type.value,
        entry_price=view.entry_price,
        entry_time_ms=_ms(view.opened_at),
        exit_reason=view.exit_reason.value if view.exit_reason is not None else None,
        exit_price=view.exit_price,
        exit_time_ms=_ms(view.closed_at) if view.exit_reason is not None else None,
        exit_type=exit_order.order_type.value if exit_order is not None else None,
        take_profit_price=view.take_profit_price,
        stop_loss_price=view.stop_loss_price,
        label=f"#{view.id}",
    )
