"""Plotly figures: the equity curve and a position's candles with its entry and exit marks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
import plotly.graph_objects as go

from tradepipe.db.dashboard_queries import EquityPoint
from tradepipe.db.views import PositionDetail
from tradepipe.enums import OrderRole, OrderStatus, Side

__all__ = [
    "QUALITY_LINES",
    "PriceMark",
    "equity_figure",
    "position_figure",
    "price_marks",
    "quality_figure",
]

_ENTRY_COLOUR = "#1f77b4"
_EXIT_COLOUR = "#ff7f0e"
_HEIGHT = 380


@dataclass(frozen=True, slots=True)
class PriceMark:
    at: datetime
    price: float
    is_entry: bool
    label: str  # hover text: what happened at this price


def equity_figure(points: Sequence[EquityPoint], *, until: datetime | None = None) -> go.Figure:
    """Cumulative net realised PnL: one step line per bot and a bold one for all of them,
    each held flat from its last trade to `until` (now) so every line reaches the present."""
    figure = go.Figure()
    by_bot: dict[str, list[EquityPoint]] = {}
    for point in points:
        by_bot.setdefault(point.bot_name, []).append(point)
    for bot_name in sorted(by_bot):
        mine = by_bot[bot_name]
        times, values = _held(
            [point.closed_at for point in mine], [point.bot_equity for point in mine], until
        )
        figure.add_trace(
            go.Scatter(
                x=times,
                y=values,
                name=bot_name,
                mode="lines+markers",
                line={"shape": "hv", "width": 1.5},
                # a marker per trade; none on the point that only holds the line to now
                marker={"size": [6] * len(mine) + [0] * (len(times) - len(mine))},
            )
        )
    times, values = _held(
        [point.closed_at for point in points], [point.total_equity for point in points], until
    )
    figure.add_trace(
        go.Scatter(
            x=times,
            y=values,
            name="all bots",
            mode="lines",
            line={"shape": "hv", "width": 3, "color": "#2ca02c"},
        )
    )
    figure.add_hline(y=0, line={"color": "grey", "width": 1, "dash": "dot"})
    figure.update_layout(
        height=_HEIGHT,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        yaxis_title="net realised PnL (quote)",
        legend={"orientation": "h", "y": 1.1},
        hovermode="x unified",
    )
    return figure


def _held(
    times: list[datetime], values: list[float], until: datetime | None
) -> tuple[list[datetime], list[float]]:
    """The line held at its last value until `until` (when given and later)."""
    if until is None or not times or until <= times[-1]:
        return times, values
    return [*times, until], [*values, values[-1]]


def price_marks(detail: PositionDetail) -> list[PriceMark]:
    """Where the position traded: its fills; else its filled orders' prices; else the
    position's own entry and exit prices."""
    roles = {order.id: order.role for order in detail.orders}
    marks = [
        PriceMark(
            fill.filled_at,
            fill.price,
            roles.get(fill.order_id) is OrderRole.ENTRY,
            f"{_role_name(roles.get(fill.order_id))} fill {fill.quantity:g} @ {fill.price:g}",
        )
        for fill in detail.fills
    ]
    if marks:
        return marks
    marks = [
        PriceMark(
            order.updated_at,
            order.price,
            order.role is OrderRole.ENTRY,
            f"{_role_name(order.role)} order filled @ {order.price:g}",
        )
        for order in detail.orders
        if order.price is not None and order.status is OrderStatus.FILLED
    ]
    if marks:
        return marks
    position = detail.position
    if position.entry_price is not None and position.opened_at is not None:
        marks.append(PriceMark(position.opened_at, position.entry_price, True, "entry"))
    if position.exit_price is not None and position.closed_at is not None:
        reason = position.exit_reason.value if position.exit_reason else "exit"
        marks.append(PriceMark(position.closed_at, position.exit_price, False, reason))
    return marks


def _role_name(role: OrderRole | None) -> str:
    return "order" if role is None else role.value.replace("_", " ")


def position_figure(
    detail: PositionDetail, candles: pd.DataFrame | None, marks: Sequence[PriceMark]
) -> go.Figure:
    """The candles around a position (when the market data store has them), its entry and
    exit marks, and its take-profit and stop-loss levels."""
    position = detail.position
    figure = go.Figure()
    if candles is not None and len(candles):
        figure.add_trace(
            go.Candlestick(
                x=pd.to_datetime(candles["start_ms"], unit="ms", utc=True),
                open=candles["open"],
                high=candles["high"],
                low=candles["low"],
                close=candles["close"],
                name=position.symbol,
                showlegend=False,
            )
        )
    long = position.side is Side.BUY
    for is_entry, name, colour in ((True, "entry", _ENTRY_COLOUR), (False, "exit", _EXIT_COLOUR)):
        chosen = [mark for mark in marks if mark.is_entry is is_entry]
        if not chosen:
            continue
        buying = long if is_entry else not long
        figure.add_trace(
            go.Scatter(
                x=[mark.at for mark in chosen],
                y=[mark.price for mark in chosen],
                mode="markers",
                name=name,
                text=[mark.label for mark in chosen],
                hovertemplate="%{text}<br>%{x}<extra></extra>",
                marker={
                    "symbol": "triangle-up" if buying else "triangle-down",
                    "size": 14,
                    "color": colour,
                    "line": {"width": 1, "color": "black"},
                },
            )
        )
    for level, name, colour in (
        (position.take_profit_price, "take profit", "#2ca02c"),
        (position.stop_loss_price, "stop loss", "#d62728"),
    ):
        if level is not None:
            figure.add_hline(
                y=level,
                line={"color": colour, "width": 1, "dash": "dash"},
                annotation_text=f"{name} {level:g}",
                annotation_position="top left",
            )
    figure.update_layout(
        height=_HEIGHT + 60,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis_rangeslider_visible=False,
        yaxis_title=f"{position.symbol} price",
        legend={"orientation": "h", "y": 1.08},
    )
    return figure


# (figure key, legend name): the live figures the Models page charts over time
QUALITY_LINES = (
    ("auc", "AUC"),
    ("precision_at_threshold", "precision"),
    ("hit_rate", "hit rate"),
)


def quality_figure(
    version: str,
    points: Sequence[tuple[datetime, dict[str, float]]],
    validation: dict[str, float] | None,
) -> go.Figure:
    """One model version's live figures per time bucket (solid lines, markers), and the
    validation figures recorded at training as dotted horizontal lines of the same colour."""
    figure = go.Figure()
    colours = ("#1f77b4", "#2ca02c", "#ff7f0e")
    times = [at for at, _ in points]
    for (key, label), colour in zip(QUALITY_LINES, colours, strict=True):
        figure.add_trace(
            go.Scatter(
                x=times,
                y=[figures.get(key) for _, figures in points],
                name=f"live {label}",
                mode="lines+markers",
                line={"color": colour},
            )
        )
        if validation is not None and validation.get(key) is not None and times:
            figure.add_trace(
                go.Scatter(
                    x=[times[0], times[-1]],
                    y=[validation[key], validation[key]],
                    name=f"validation {label}",
                    mode="lines",
                    line={"color": colour, "dash": "dot"},
                )
            )
    figure.update_layout(
        title=f"version {version}: live quality per period",
        height=_HEIGHT,
        yaxis={"range": [0, 1]},
        margin={"t": 40, "b": 10},
    )
    return figure
