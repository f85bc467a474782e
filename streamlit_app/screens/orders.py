"""Orders: a filterable table (bot, symbol, status, role, time range) with the strategy hash
and model version of every order, and a drill-down into one position: entry, exits, exit
reason, PnL, and its candles with the entry and exit marks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

import pandas as pd
import streamlit as st

from streamlit_app import charts, context, display
from streamlit_app.candles import position_candles
from tradepipe.config import Settings
from tradepipe.db.queries import get_bot, get_position, list_bots, list_orders, list_positions
from tradepipe.db.views import BotView, OrderView, PositionDetail, PositionView
from tradepipe.enums import OrderRole, OrderStatus

ALL = "All"
_RANGES: dict[str, timedelta | None] = {
    "All time": None,
    "Last hour": timedelta(hours=1),
    "Last 24 hours": timedelta(days=1),
    "Last 7 days": timedelta(days=7),
    "Last 30 days": timedelta(days=30),
}
CUSTOM = "Custom dates"
POSITION_PARAM = "position"


@dataclass(frozen=True, slots=True)
class OrderFilters:
    bot: str | None
    symbol: str | None
    statuses: tuple[OrderStatus, ...]
    roles: tuple[OrderRole, ...]
    since: datetime | None
    until: datetime | None
    limit: int


def render() -> None:
    current = context.settings()
    st.title("Orders")
    bots = context.read(current, list_bots)
    if not bots:
        st.info("No bots yet, so no orders: add one with `tradepipe bots add ...`.")
        return
    filters = _filters(bots)

    @st.fragment(run_every=context.refresh_every())
    def orders_table() -> None:
        with context.read_errors_shown():
            _orders(current, filters)

    @st.fragment(run_every=context.refresh_every())
    def position_panel() -> None:
        with context.read_errors_shown():
            _position(current, filters)

    orders_table()
    st.divider()
    st.subheader("Position")
    position_panel()


def _filters(bots: Sequence[BotView]) -> OrderFilters:
    first, second, third = st.columns(3)
    bot = first.selectbox("Bot", [ALL, *(b.name for b in bots)], key="orders_bot")
    symbols = sorted({b.symbol for b in bots})
    symbol = second.selectbox("Symbol", [ALL, *symbols], key="orders_symbol")
    range_name = third.selectbox("Time range", [*_RANGES, CUSTOM], key="orders_range")
    fourth, fifth, sixth = st.columns([2, 2, 1])
    statuses = fourth.multiselect(
        "Status", list(OrderStatus), format_func=_label, placeholder="any status"
    )
    roles = fifth.multiselect("Role", list(OrderRole), format_func=_label, placeholder="any role")
    limit = sixth.number_input("Rows", min_value=10, max_value=5_000, value=200, step=50)
    since, until = _time_range(range_name)
    return OrderFilters(
        bot=None if bot == ALL else bot,
        symbol=None if symbol == ALL else symbol,
        statuses=tuple(statuses),
        roles=tuple(roles),
        since=since,
        until=until,
        limit=int(limit),
    )


def _label(member: OrderStatus | OrderRole) -> str:
    return member.value.replace("_", " ")


def _time_range(name: str) -> tuple[datetime | None, datetime | None]:
    if name != CUSTOM:
        span = _RANGES[name]
        return (None if span is None else datetime.now(UTC) - span), None
    today = datetime.now(UTC).date()
    picked = st.date_input("From / to (UTC days)", (today - timedelta(days=7), today))
    days = picked if isinstance(picked, tuple) else (picked,)
    if not days or days[0] is None:
        return None, None
    since = datetime.combine(days[0], time(), UTC)
    last = days[-1] if days[-1] is not None else days[0]
    return since, datetime.combine(last + timedelta(days=1), time(), UTC)


def _orders(current: Settings, filters: OrderFilters) -> None:
    orders = context.read(
        current,
        list_orders,
        bot=filters.bot,
        symbol=filters.symbol,
        status=filters.statuses or None,
        role=filters.roles or None,
        since=filters.since,
        until=filters.until,
        limit=filters.limit,
    )
    if not orders:
        st.info("No orders match these filters.")
        return
    st.caption(f"{len(orders)} orders, newest first (at most {filters.limit}).")
    st.dataframe(
        _orders_frame(orders),
        hide_index=True,
        column_config={
            "strategy hash": st.column_config.TextColumn(
                help=f"first {display.HASH_CHARS} characters of the strategy's content hash"
            ),
            **display.position_links(),
        },
    )


def _orders_frame(orders: Sequence[OrderView]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "created": [display.when(o.created_at) for o in orders],
            "bot": [o.bot_name for o in orders],
            "symbol": [o.symbol for o in orders],
            "side": [o.side.value for o in orders],
            "type": [o.order_type.value for o in orders],
            "role": [_label(o.role) for o in orders],
            "status": [_label(o.status) for o in orders],
            "price": [o.price for o in orders],
            "quantity": [o.quantity for o in orders],
            "filled": [o.filled_quantity for o in orders],
            "strategy hash": [display.short_hash(o.strategy_hash) for o in orders],
            "model version": [o.model_version or "" for o in orders],
            "position": [display.position_link(o.position_id) for o in orders],
            "reason": [o.reason or o.error or "" for o in orders],
            "client order id": [o.client_order_id for o in orders],
        }
    )


def _position(current: Settings, filters: OrderFilters) -> None:
    positions = context.read(
        current, list_positions, bot=filters.bot, symbol=filters.symbol, limit=200
    )
    if not positions:
        st.info("No positions for these filters yet.")
        return
    labels = {str(p.id): _position_label(p) for p in positions}
    ids = list(labels)
    # ?position=12 opens that position (a link from anywhere); otherwise start on the newest
    # position that traded, since a pending entry has little to show.
    requested = st.query_params.get(POSITION_PARAM)
    traded = next((i for i, p in enumerate(positions) if p.opened_at is not None), 0)
    chosen = st.selectbox(
        "Inspect position",
        ids,
        index=ids.index(requested) if requested in ids else traded,
        format_func=lambda position_id: labels.get(position_id, f"#{position_id}"),
        key="inspect_position",
    )
    if chosen is not None and chosen != requested:
        st.query_params[POSITION_PARAM] = chosen  # the address bar now links to it
    detail = None if chosen is None else context.read(current, get_position, int(chosen))
    if detail is None:
        st.info("Choose a position to inspect.")
        return
    _position_detail(current, detail)


def _position_label(position: PositionView) -> str:
    outcome = position.exit_reason.value if position.exit_reason else position.status.value
    market = f"{position.symbol} {position.side.value}"
    return f"#{position.id} · {position.bot_name} · {market} · {outcome}"


def _price(value: float | None) -> str:
    return "n/a" if value is None else f"{value:g}"


def _position_detail(current: Settings, detail: PositionDetail) -> None:
    position = detail.position
    columns = st.columns(6)
    columns[0].metric("Status", position.status.value)
    columns[1].metric("Entry", _price(position.entry_price))
    columns[2].metric("Exit", _price(position.exit_price))
    columns[3].metric("Exit reason", position.exit_reason.value if position.exit_reason else "—")
    columns[4].metric("Net PnL", display.money(position.net_pnl))
    columns[5].metric("Fees", f"{position.fees:,.4g}")
    st.caption(
        f"Opened {display.when(position.opened_at) or 'not yet'} · closed "
        f"{display.when(position.closed_at) or 'not yet'} · quantity {position.quantity:g} · "
        f"strategy {display.short_hash(position.strategy_hash)} · model version "
        f"{position.model_version or 'none'}"
    )
    bot = context.read(current, get_bot, position.bot_name)
    candles = None
    if bot is not None:
        found = position_candles(
            current.resolved_market_data_dir,
            position,
            exchange=bot.exchange,
            timeframe=bot.timeframe,
        )
        candles = found.candles
        if found.note:
            st.caption(found.note)
    marks = charts.price_marks(detail)
    if marks or candles is not None:
        st.plotly_chart(
            charts.position_figure(detail, candles, marks), key=f"position_chart_{position.id}"
        )
    else:
        st.info("Nothing to chart yet: no fills and no candles for this position.")
    st.markdown("**Orders of this position**")
    st.dataframe(
        _orders_frame(detail.orders), hide_index=True, column_config=display.position_links()
    )
    if detail.fills:
        st.markdown("**Fills**")
        st.dataframe(
            pd.DataFrame(
                {
                    "filled": [display.when(f.filled_at) for f in detail.fills],
                    "order": [f.order_id for f in detail.fills],
                    "price": [f.price for f in detail.fills],
                    "quantity": [f.quantity for f in detail.fills],
                    "fee": [f.fee for f in detail.fills],
                    "fee asset": [f.fee_asset or "" for f in detail.fills],
                    "venue trade id": [f.exchange_fill_id for f in detail.fills],
                }
            ),
            hide_index=True,
        )


render()
