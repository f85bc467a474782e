"""The Bots page's hand on one open position: close it at market (exit reason `operator`),
or move its take-profit and stop-loss. Through the one implementation
(tradepipe.position_controls), as `tradepipe positions close|move`: the request is checked
against the live price the engine publishes and recorded with `dashboard` as who; the
engine running the bot applies it at its next poll and answers with an event. Behind the
dashboard's access check, as every page."""

from __future__ import annotations

import streamlit as st

from streamlit_app import context
from streamlit_app.controls import WHO, write
from tradepipe.config import Settings
from tradepipe.db.dashboard_queries import OpenPositionMark, open_position_marks
from tradepipe.position_controls import request_close, request_move

__all__ = ["render"]

_KEY = "tradepipe_positions"


def _label(mark: OpenPositionMark) -> str:
    p = mark.position
    price = "" if mark.mark_price is None else f" · at {mark.mark_price:g}"
    return f"#{p.id} · {p.bot_name} · {p.symbol} {p.side.value} {p.status.value}{price}"


def render(current: Settings) -> None:
    st.subheader("Open positions")
    marks = context.read(current, open_position_marks)
    if not marks:
        st.caption("No open position to close or move.")
        return
    labels = {_label(mark): mark for mark in marks}
    chosen = labels[st.selectbox("Position", list(labels), key=f"{_KEY}_position")]
    position = chosen.position
    st.caption(
        f"take-profit {position.take_profit_price} · stop-loss {position.stop_loss_price} · "
        + (chosen.note or f"marked at the {chosen.price_source} price")
    )
    with st.form(f"{_KEY}_close"):
        closing = st.form_submit_button("Close position", type="primary")
    if closing:
        write(
            current,
            lambda session: request_close(session, position.id, by=WHO),
            f"position {position.id} closes at market at the engine's next poll",
        )
    with st.form(f"{_KEY}_move"):
        columns = st.columns([2, 2, 1])
        take_profit = columns[0].number_input(
            "New take-profit",
            value=position.take_profit_price,
            format="%g",
            key=f"{_KEY}_tp_{position.id}",
        )
        stop_loss = columns[1].number_input(
            "New stop-loss",
            value=position.stop_loss_price,
            format="%g",
            key=f"{_KEY}_sl_{position.id}",
        )
        moving = columns[2].form_submit_button("Move barriers")
    if moving:
        write(
            current,
            lambda session: request_move(
                session,
                position.id,
                by=WHO,
                take_profit_price=_changed(take_profit, position.take_profit_price),
                stop_loss_price=_changed(stop_loss, position.stop_loss_price),
            ),
            f"position {position.id} takes its new barriers at the engine's next poll",
        )


def _changed(value: float | None, current: float | None) -> float | None:
    return None if value is None or value == current else float(value)
