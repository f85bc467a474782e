"""Strategies: the registry (status, content hash, version count, last error with its file
and line) and the bots using each strategy."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import streamlit as st

from streamlit_app import context, display
from tradepipe.config import Settings
from tradepipe.db.queries import list_bots, list_strategies
from tradepipe.db.views import BotView, StrategyView
from tradepipe.enums import StrategyStatus


def render() -> None:
    current = context.settings()
    st.title("Strategies")

    @st.fragment(run_every=context.refresh_every())
    def live() -> None:
        with context.read_errors_shown():
            _body(current)

    live()


def _body(current: Settings) -> None:
    strategies = context.read(current, list_strategies)
    bots = context.read(current, list_bots)
    if not strategies:
        st.info(
            f"No strategies registered yet: drop a strategy file into "
            f"`{current.strategies_dir}/`; the live engine's watcher registers it."
        )
    else:
        st.dataframe(
            display.status_styles(_frame(strategies, bots), ["status"]),
            hide_index=True,
            column_config={
                **display.narrow("last error"),
                "hash": st.column_config.TextColumn(
                    help="the loader's content hash (sha256)", width="medium"
                ),
            },
        )
        for strategy in strategies:
            if strategy.status is StrategyStatus.INVALID:
                where = strategy.file_path
                if strategy.error_line is not None:
                    where += f", line {strategy.error_line}"
                st.error(
                    f"**{strategy.name}** fails to load ({where}): "
                    f"{strategy.error or 'no message recorded'}. Its bots keep running the "
                    "last version that loaded.",
                    icon=":material/bug_report:",
                )
    registered = {strategy.name for strategy in strategies}
    orphans = [bot for bot in bots if bot.strategy_name not in registered]
    if orphans:
        st.warning(
            "Bots naming a strategy that is not registered: "
            + ", ".join(f"**{bot.name}** ({bot.strategy_name})" for bot in orphans)
        )


def _frame(strategies: Sequence[StrategyView], bots: Sequence[BotView]) -> pd.DataFrame:
    users: dict[str, list[str]] = {}
    for bot in bots:
        users.setdefault(bot.strategy_name, []).append(bot.name)
    return pd.DataFrame(
        {
            "strategy": [s.name for s in strategies],
            "status": [s.status.value for s in strategies],
            "versions": [s.version_count for s in strategies],
            "bots": [", ".join(users.get(s.name, [])) or "none" for s in strategies],
            "file": [s.file_path for s in strategies],
            "class": [s.class_name for s in strategies],
            "last error": [_error(s) for s in strategies],
            "hash": [s.content_hash for s in strategies],
            "updated": [display.when(s.updated_at) for s in strategies],
        }
    )


def _error(strategy: StrategyView) -> str:
    if not strategy.error:
        return ""
    line = f" (line {strategy.error_line})" if strategy.error_line is not None else ""
    return f"{strategy.error}{line}"


render()
