"""Bots: health per bot (status, heartbeat age with stale highlighting, strategy and its
version, model and its version, open positions, last error, uptime), per engine
(heartbeat, version, bots owned), the bot leases of engines sharing a PostgreSQL database
(owner, epoch, lease ages), the operator's controls (streamlit_app/controls.py: a
bot on or off, its strategy, the kill switch), one open position closed or its barriers
moved (streamlit_app/position_controls.py) and an editor of a bot's configuration
(streamlit_app/bot_editor.py) with its change history."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import streamlit as st
from pandas.io.formats.style import Styler

from streamlit_app import bot_editor, context, controls, display, position_controls
from tradepipe.config import Settings
from tradepipe.db.dashboard_queries import (
    BotHealth,
    EngineHealth,
    LeaseOverview,
    bot_health,
    bot_leases,
    engine_health,
)
from tradepipe.db.queries import DEFAULT_STALE_AFTER, list_bots

_STALE_STYLE = "background-color: rgba(255, 165, 0, 0.25)"
_ERROR_STYLE = "background-color: rgba(255, 60, 60, 0.22)"


def render() -> None:
    current = context.settings()
    st.title("Bots")
    st.caption(
        f"A heartbeat older than {DEFAULT_STALE_AFTER.total_seconds():g} s is stale "
        "(highlighted); errors are red."
    )

    @st.fragment(run_every=context.refresh_every())
    def live() -> None:
        with context.read_errors_shown():
            _body(current)

    live()
    # Outside the refreshing fragment: a refresh must not redraw the form being filled in.
    with context.read_errors_shown():
        bots = context.read(current, list_bots)
        controls.render(current, bots)
        position_controls.render(current)
        bot_editor.render(current, bots)


def _body(current: Settings) -> None:
    health = context.read(current, bot_health)
    engines = context.read(current, engine_health)
    st.subheader("Bots")
    if health:
        st.dataframe(
            _highlight(_bots_frame(health), health),
            hide_index=True,
            column_config=display.narrow("last error"),
        )
        for item in health:
            if item.bot.config_error:
                st.warning(
                    f"**{item.bot.name}**: stored config unreadable: {item.bot.config_error}"
                )
    else:
        st.info(
            "No bots yet: add one with `tradepipe bots add NAME --strategy STRATEGY "
            "--symbol BTCUSDT --timeframe 1m ...` (see `tradepipe bots add --help`)."
        )
    st.subheader("Engines")
    if engines:
        st.dataframe(display.status_styles(_engines_frame(engines), ["status"]), hide_index=True)
    else:
        st.info("No live engine has sent a heartbeat yet.")
    _leases(context.read(current, bot_leases))


def _leases(overview: LeaseOverview) -> None:
    st.subheader("Leases")
    if not overview.shared:
        st.caption("SQLite database: one engine owns every bot (no leases).")
        return
    if not overview.leases:
        st.info("No leases: no engine has run on this database yet.")
        return
    held = overview.live_by_owner()
    summary = ", ".join(f"**{owner}** {count}" for owner, count in held.items()) or "none"
    st.caption(
        f"Live leases by engine: {summary}. A bot moves only when its engine stops renewing "
        "(gone), stops gracefully or is over its `engine_max_bots`; each takeover raises "
        "the epoch that fences its writes."
    )
    st.dataframe(_leases_frame(overview), hide_index=True)


def _leases_frame(overview: LeaseOverview) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "engine": [lease.owner for lease in overview.leases],
            "bot": [lease.bot for lease in overview.leases],
            "epoch": [lease.epoch for lease in overview.leases],
            "held for": [display.duration(lease.held_seconds) for lease in overview.leases],
            "renewed": [display.age(lease.renewed_seconds_ago) for lease in overview.leases],
            "lease": [
                "expired"
                if lease.expired
                else f"expires in {display.duration(lease.expires_in_seconds)}"
                for lease in overview.leases
            ],
        }
    )


def _bots_frame(health: Sequence[BotHealth]) -> pd.DataFrame:
    rows = []
    for item in health:
        bot, beat, strategy, config = item.bot, item.heartbeat, item.strategy, item.bot.config
        model = ""
        if config is not None and config.model_name:
            model = f"{config.model_name}@{config.model_alias}"
        if strategy is None:
            registered = "not registered"
        else:
            registered = (
                f"{display.short_hash(strategy.content_hash)} v{strategy.version_count} "
                f"({strategy.status.value})"
            )
        rows.append(
            {
                "bot": bot.name,
                "status": display.bot_status_label(bot.status, stale=item.is_stale),
                "heartbeat": display.age(beat.age_seconds) if beat else "never",
                "uptime": display.duration(item.uptime_seconds),
                "open positions": item.open_positions,
                "last error": bot.last_error or "",
                "strategy": bot.strategy_name,
                "strategy version": registered,
                "running hash": display.short_hash(item.strategy_hash),
                "model": model,
                "model version": item.model_version or "",
                "market": f"{bot.exchange} {bot.symbol} {bot.timeframe}",
                "mode": bot.mode.value,
                "enabled": bot.enabled,
                "engine": beat.engine_id if beat else "",
            }
        )
    return pd.DataFrame(rows)


def _highlight(frame: pd.DataFrame, health: Sequence[BotHealth]) -> Styler:
    """Stale rows orange, rows in error red, the status word coloured."""
    styles = [
        _ERROR_STYLE if item.is_error else _STALE_STYLE if item.is_stale else "" for item in health
    ]

    def row_style(row: pd.Series) -> list[str]:
        return [styles[int(str(row.name))]] * len(row)

    return display.status_styles(frame, ["status"]).apply(row_style, axis=1)


def _engines_frame(engines: Sequence[EngineHealth]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "engine": [e.heartbeat.name for e in engines],
            "engine id": [e.heartbeat.engine_id for e in engines],
            "status": ["stale" if e.heartbeat.is_stale else e.heartbeat.status for e in engines],
            "version": [e.heartbeat.version or "" for e in engines],
            "heartbeat": [display.age(e.heartbeat.age_seconds) for e in engines],
            "uptime": [display.duration(e.uptime_seconds) for e in engines],
            "bots owned": [", ".join(e.bots) or "none" for e in engines],
            "detail": [display.details(e.heartbeat.detail) for e in engines],
        }
    )


render()
