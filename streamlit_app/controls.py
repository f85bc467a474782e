"""The Bots page's controls: enable or disable a bot, assign it a strategy, and the kill
switch of every engine. Each goes through the kernel (tradepipe.bots, tradepipe.controls),
as the CLI does, and running engines apply it at their next look at the database. Behind
the dashboard's access check, as every page."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import streamlit as st
from sqlalchemy.orm import Session

from streamlit_app import context
from tradepipe.bots import BotError, set_enabled, set_strategy
from tradepipe.config import Settings
from tradepipe.controls import kill_switch, set_kill_switch
from tradepipe.db.session import session_scope
from tradepipe.db.views import BotView
from tradepipe.position_controls import PositionControlError

__all__ = ["WHO", "render", "write"]

WHO = "dashboard"
_KEY = "tradepipe_controls"
T = TypeVar("T")


def render(current: Settings, bots: Sequence[BotView]) -> None:
    st.subheader("Controls")
    _kill_switch(current)
    if not bots:
        return
    with st.form(f"{_KEY}_bot"):
        columns = st.columns([2, 2, 2, 1])
        name = columns[0].selectbox("Bot", [bot.name for bot in bots], key=f"{_KEY}_bot_name")
        action = columns[1].selectbox(
            "Action", ("enable", "disable", "assign strategy"), key=f"{_KEY}_bot_action"
        )
        strategy = columns[2].text_input("Strategy (assign)", key=f"{_KEY}_bot_strategy")
        submitted = columns[3].form_submit_button("Apply")
    if submitted and name is not None:
        if action == "assign strategy":
            chosen = strategy.strip()
            write(
                current,
                lambda session: set_strategy(session, name, chosen, current.strategies_dir),
                f"{name} runs {chosen} from its next decision",
            )
        else:
            enabled = action == "enable"
            write(
                current,
                lambda session: set_enabled(session, name, enabled),
                f"{name} {'enabled' if enabled else 'disabled'}",
            )


def _kill_switch(current: Settings) -> None:
    done = st.session_state.pop(f"{_KEY}_kill_done", None)
    if done:
        st.success(done)
    state = context.read(current, kill_switch)
    if state.engaged:
        st.error(f"Kill switch **engaged** by {state.by}: {state.reason}")
    with st.form(f"{_KEY}_kill"):
        columns = st.columns([4, 1, 1])
        reason = columns[0].text_input("Reason (required, recorded)", key=f"{_KEY}_kill_reason")
        flatten = columns[1].checkbox(
            "Flatten", key=f"{_KEY}_kill_flatten", help="also leave every open position at market"
        )
        label = "Release kill switch" if state.engaged else "Engage kill switch"
        submitted = columns[2].form_submit_button(label, type="primary")
    if submitted:
        engaged = not state.engaged
        done = (
            f"kill switch {'engaged' if engaged else 'released'}; engines apply it at their "
            "next poll"
        )
        if write(
            current,
            lambda session: set_kill_switch(
                session, engaged=engaged, reason=reason, by=WHO, flatten=engaged and flatten
            ),
            None,
        ):
            # drawn again at once: the form's button must offer the opposite now
            st.session_state[f"{_KEY}_kill_done"] = done
            st.rerun()


def write(current: Settings, action: Callable[[Session], T], done: str | None) -> bool:
    """Run `action` in a transaction; its error, or `done` (if any), shown. True if done."""
    try:
        with session_scope(context.engine(current)) as session:
            action(session)
    except (BotError, PositionControlError, ValueError) as error:
        st.error(str(error))
        return False
    if done:
        st.success(done)
    return True
