"""Overview: PnL in total and per bot (realised and unrealised), the equity curve, open
positions, today's trades, win rate and fees, the engines' status, and a banner when a bot
is in error or stale."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from streamlit_app import charts, context, display
from tradepipe.config import Settings
from tradepipe.db.dashboard_queries import (
    BotHealth,
    EngineHealth,
    OpenPositionMark,
    bot_health,
    closed_positions,
    engine_health,
    equity_curve,
    open_position_marks,
)
from tradepipe.db.queries import pnl_summary
from tradepipe.db.views import PnlSummary

NO_BOTS = (
    "No bots yet: add one with `tradepipe bots add NAME --strategy STRATEGY --symbol BTCUSDT "
    "--timeframe 1m --capital 100 --take-profit-pct 1 --stop-loss-pct 0.5 "
    "--max-holding-seconds 3600`."
)


def render() -> None:
    current = context.settings()
    st.title("Overview")

    @st.fragment(run_every=context.refresh_every())
    def live() -> None:
        with context.read_errors_shown():
            _body(current)

    live()


def _body(current: Settings) -> None:
    health = context.read(current, bot_health)
    engines = context.read(current, engine_health)
    _banner(health, engines)
    if not health:
        st.info(NO_BOTS)
        _engines(engines)
        return
    summary = context.read(current, pnl_summary)
    marks = context.read(current, open_position_marks)
    today = context.read(current, pnl_summary, since=context.utc_midnight())
    unrealised = sum(mark.unrealised_pnl or 0.0 for mark in marks)
    unmarked = sum(1 for mark in marks if mark.unrealised_pnl is None)

    columns = st.columns(6)
    columns[0].metric("Net realised PnL", display.money(summary.net_pnl), border=True)
    columns[1].metric(
        "Unrealised PnL",
        display.money(unrealised),
        border=True,
        help="Open positions marked at the live price the engine publishes (at the last "
        "fill known for their symbol when no engine is beating)"
        + (f"; {unmarked} position(s) cannot be marked yet" if unmarked else ""),
    )
    columns[2].metric("Open positions", summary.open_positions, border=True)
    columns[3].metric("Trades today (UTC)", today.trades, border=True)
    columns[4].metric("Win rate", display.percent(summary.win_rate), border=True)
    columns[5].metric("Fees", f"{summary.fees:,.2f}", border=True)

    _engines(engines)
    st.subheader("PnL per bot")
    st.dataframe(
        display.status_styles(_per_bot_frame(summary, marks, health), ["status"]),
        hide_index=True,
    )

    st.subheader("Equity curve")
    points = context.read(current, equity_curve)
    if points:
        figure = charts.equity_figure(points, until=datetime.now(UTC))
        st.plotly_chart(figure, key="equity_curve")
    else:
        st.info("No closed trades yet: the curve starts with the first closed position.")

    st.subheader("Open positions")
    if marks:
        st.dataframe(_open_frame(marks), hide_index=True, column_config=display.position_links())
    else:
        st.info("No open positions.")

    st.subheader("Today's trades (UTC)")
    trades = context.read(current, closed_positions, since=context.utc_midnight(), limit=200)
    if trades:
        st.dataframe(
            pd.DataFrame(
                {
                    "closed": [display.when(t.closed_at) for t in trades],
                    "bot": [t.bot_name for t in trades],
                    "symbol": [t.symbol for t in trades],
                    "side": [t.side.value for t in trades],
                    "entry": [t.entry_price for t in trades],
                    "exit": [t.exit_price for t in trades],
                    "exit reason": [t.exit_reason.value if t.exit_reason else "" for t in trades],
                    "net PnL": [t.net_pnl for t in trades],
                    "fees": [t.fees for t in trades],
                    "position": [display.position_link(t.id) for t in trades],
                }
            ),
            hide_index=True,
            column_config=display.position_links(),
        )
    else:
        st.info("No trades closed today yet.")


def _banner(health: Sequence[BotHealth], engines: Sequence[EngineHealth]) -> None:
    problems = []
    for bot in health:
        if bot.is_error:
            problems.append(f"**{bot.bot.name}** is in error: {bot.bot.last_error or 'no detail'}")
        elif bot.is_stale:
            beat = bot.heartbeat
            last = f"last heartbeat {display.age(beat.age_seconds)}" if beat else "never beat"
            problems.append(f"**{bot.bot.name}** is stale ({last})")
    for engine in engines:
        if engine.heartbeat.is_stale:
            age = display.age(engine.heartbeat.age_seconds)
            problems.append(f"engine **{engine.heartbeat.name}** is stale (last heartbeat {age})")
    if problems:
        st.error(
            "Needs attention:\n\n" + "\n".join(f"- {line}" for line in problems),
            icon=":material/warning:",
        )


def _engines(engines: Sequence[EngineHealth]) -> None:
    st.subheader("Engines")
    if not engines:
        st.warning(
            "No live engine has reported yet: a running engine writes a heartbeat every few "
            "seconds, and its bots appear here as they start."
        )
        return
    for engine in engines:
        beat = engine.heartbeat
        state = ":orange[**stale**]" if beat.is_stale else f":green[**{beat.status}**]"
        st.markdown(
            f"**{beat.name}** · {state} · version {beat.version or 'unknown'} · "
            f"heartbeat {display.age(beat.age_seconds)} · "
            f"up {display.duration(engine.uptime_seconds)} · "
            f"bots: {', '.join(engine.bots) or 'none'}"
        )


def _per_bot_frame(
    summary: PnlSummary, marks: Sequence[OpenPositionMark], health: Sequence[BotHealth]
) -> pd.DataFrame:
    unrealised: dict[str, float] = {}
    for mark in marks:
        if mark.unrealised_pnl is not None:
            name = mark.position.bot_name
            unrealised[name] = unrealised.get(name, 0.0) + mark.unrealised_pnl
    status = {
        item.bot.name: display.bot_status_label(item.bot.status, stale=item.is_stale)
        for item in health
    }
    return pd.DataFrame(
        {
            "bot": [bot.bot_name for bot in summary.bots],
            "status": [status.get(bot.bot_name, "") for bot in summary.bots],
            "net realised PnL": [bot.net_pnl for bot in summary.bots],
            "unrealised PnL": [unrealised.get(bot.bot_name, 0.0) for bot in summary.bots],
            "fees": [bot.fees for bot in summary.bots],
            "trades": [bot.trades for bot in summary.bots],
            "win rate": [display.percent(bot.win_rate) for bot in summary.bots],
            "open positions": [bot.open_positions for bot in summary.bots],
        }
    )


def _age(mark: OpenPositionMark) -> float | None:
    if mark.marked_at is None:
        return None
    return round((datetime.now(UTC) - mark.marked_at).total_seconds(), 1)


def _open_frame(marks: Sequence[OpenPositionMark]) -> pd.DataFrame:
    positions = [mark.position for mark in marks]
    return pd.DataFrame(
        {
            "position": [display.position_link(p.id) for p in positions],
            "bot": [p.bot_name for p in positions],
            "symbol": [p.symbol for p in positions],
            "side": [p.side.value for p in positions],
            "status": [p.status.value for p in positions],
            "quantity": [p.quantity for p in positions],
            "entry": [p.entry_price for p in positions],
            "mark": [mark.mark_price for mark in marks],
            "marked at": [display.when(mark.marked_at) for mark in marks],
            "price age (s)": [_age(mark) for mark in marks],
            "price from": [mark.price_source or "" for mark in marks],
            "unrealised PnL": [mark.unrealised_pnl for mark in marks],
            "take profit": [p.take_profit_price for p in positions],
            "stop loss": [p.stop_loss_price for p in positions],
            "expires": [display.when(p.expires_at) for p in positions],
            "note": [mark.note or "" for mark in marks],
        }
    )


render()
