"""The Bots page's editor: change a bot's sizing, exits and model while it runs.

Through the one implementation (tradepipe.bot_changes): validated as at `tradepipe bots
add`, recorded as a `bot_config_changed` event with `dashboard` as who and the old and new
values, applied by a running engine from the bot's next entry; open positions keep their
barriers unless "Also move open positions" is ticked: then the engine running the bot gives
them the new take-profit, stop-loss and timeout at its next poll. Behind the dashboard's
access check, as every page.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import streamlit as st

from streamlit_app import context, display
from tradepipe.bot_changes import CHANGE_EVENT, change_bot_config
from tradepipe.bots import BotError
from tradepipe.config import Settings
from tradepipe.db.queries import recent_events
from tradepipe.db.session import session_scope
from tradepipe.db.views import BotView

__all__ = ["LIMITS", "NUMBERS", "WHO", "render"]

WHO = "dashboard"
# field -> label; whole numbers where the config has them
NUMBERS = {
    "capital_per_trade": "Capital per trade",
    "take_profit_pct": "Take-profit %",
    "stop_loss_pct": "Stop-loss %",
    "max_holding_seconds": "Max holding (s)",
    "maker_order_timeout_seconds": "Maker timeout (s)",
    "max_open_positions": "Max open positions",
    "confidence_threshold": "Confidence threshold",
}
# optional risk limits (README, "Risk limits"): empty means no limit
LIMITS = {
    "daily_loss_limit": "Daily loss limit (quote, empty: none)",
    "max_drawdown_pct": "Max drawdown % (empty: none)",
    "max_symbol_exposure": "Max symbol exposure (quote, empty: none)",
}
_KEY = "tradepipe_bot_editor"


def render(current: Settings, bots: Sequence[BotView]) -> None:
    st.subheader("Edit a bot")
    editable = [bot for bot in bots if bot.config is not None]
    if not editable:
        st.caption("No bot with a readable configuration to edit.")
        return
    names = [bot.name for bot in editable]
    name = st.selectbox("Bot", names, key=f"{_KEY}_bot")
    bot = next(item for item in editable if item.name == name)
    assert bot.config is not None
    values = bot.config.model_dump(mode="json")
    with st.form(f"{_KEY}_{bot.name}"):
        columns = st.columns(4)
        entered: dict[str, Any] = {}
        for index, (field, label) in enumerate(NUMBERS.items()):
            value = values[field]
            entered[field] = columns[index % 4].number_input(
                label,
                value=value,
                step=1 if isinstance(value, int) else None,
                format=None if isinstance(value, int) else "%g",
                key=f"{_KEY}_{bot.name}_{field}",
            )
        for index, (field, label) in enumerate(LIMITS.items()):
            entered[field] = columns[index % 4].number_input(
                label,
                value=values[field],
                min_value=None,
                format="%g",
                key=f"{_KEY}_{bot.name}_{field}",
            )
        entered["model_name"] = (
            columns[3]
            .text_input(
                "Model (empty: none)",
                value=values["model_name"] or "",
                key=f"{_KEY}_{bot.name}_model",
            )
            .strip()
            or None
        )
        move_open = st.checkbox(
            "Also move open positions",
            key=f"{_KEY}_{bot.name}_move_open",
            help="give the bot's open positions the new take-profit, stop-loss and timeout",
        )
        submitted = st.form_submit_button("Save", type="primary")
    if submitted:
        changes = {key: value for key, value in entered.items() if value != values[key]}
        try:
            with session_scope(context.engine(current)) as session:
                done = change_bot_config(
                    session,
                    bot.name,
                    changes,
                    by=WHO,
                    strategies_dir=current.strategies_dir,
                    known_notifiers=current.notifiers.keys(),
                    move_open=move_open,
                )
        except BotError as error:
            st.error(str(error))
        else:
            shown = ", ".join(f"{key} {done.old[key]} → {done.new[key]}" for key in done.new)
            moved = "; open positions move at the engine's next poll" if move_open else ""
            st.success(
                (f"{bot.name}: {shown}" if done.new else f"{bot.name}: nothing changed") + moved
            )
    _history(current, bot.name)


def _history(current: Settings, name: str) -> None:
    events = context.read(current, recent_events, kind=CHANGE_EVENT, bot=name, limit=20)
    if not events:
        st.caption(f"No configuration change recorded for {name} yet.")
        return
    rows = [
        {
            "changed": display.when(event.created_at),
            "by": event.payload.get("by", ""),
            "setting": key,
            "old": str(event.payload.get("old", {}).get(key)),
            "new": str(value),
        }
        for event in events
        for key, value in event.payload.get("new", {}).items()
    ]
    st.markdown(f"**Configuration changes of {name}** (newest first)")
    st.dataframe(pd.DataFrame(rows), hide_index=True)
