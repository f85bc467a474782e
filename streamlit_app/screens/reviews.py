"""Reviews: each review of a live bot against a backtest of its recorded market
(`tradepipe live review`, the daily `live_review` DAG), newest first, with its divergences
and their causes."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from streamlit_app import context
from tradepipe.config import Settings
from tradepipe.db import LiveReviewView, list_live_reviews


def render() -> None:
    current = context.settings()
    st.title("Reviews")

    @st.fragment(run_every=context.refresh_every())
    def live() -> None:
        with context.read_errors_shown():
            _body(current)

    live()


def _verdict(value: object) -> str:
    if value is None:
        return "-"
    return "equal" if value is True else "differ"


def _frame(reviews: tuple[LiveReviewView, ...]) -> pd.DataFrame:
    rows = []
    for review in reviews:
        summary = review.summary
        rows.append(
            {
                "reviewed": review.created_at.strftime("%Y-%m-%d %H:%M"),
                "bot": review.bot_name,
                "from": review.range_start.strftime("%Y-%m-%d %H:%M:%S"),
                "until": review.range_end.strftime("%Y-%m-%d %H:%M:%S"),
                "features": _verdict(summary.get("features_equal")),
                "decisions": _verdict(summary.get("decisions_equal")),
                "positions": f"{summary.get('positions_matched', 0)} matched of "
                f"{summary.get('positions_live', 0)} live, "
                f"{summary.get('positions_backtest', 0)} backtest",
                "divergences": len(review.divergences),
            }
        )
    return pd.DataFrame(rows)


def _body(current: Settings) -> None:
    reviews = context.read(current, list_live_reviews)
    if not reviews:
        st.info(
            "No reviews yet: run `tradepipe live review --bot NAME`, or let the daily "
            "`live_review` DAG review every bot."
        )
        return
    st.caption(
        f"{len(reviews)} review(s), newest first: each replays a bot's recorded candles "
        "through the backtester with the strategy and model versions that were live."
    )
    st.dataframe(_frame(reviews), hide_index=True)
    labels = {
        f"#{r.id} {r.bot_name} {r.range_start:%Y-%m-%d %H:%M} .. {r.range_end:%H:%M}": r
        for r in reviews
    }
    chosen = labels[st.selectbox("Review", list(labels))]
    divergences = chosen.divergences
    if not divergences:
        st.success("No divergence: live trading did what the backtest of its market did.")
        return
    st.dataframe(
        pd.DataFrame(divergences, columns=["kind", "time", "detail", "cause"]),
        hide_index=True,
        column_config={
            "detail": st.column_config.TextColumn(width="medium"),
            "cause": st.column_config.TextColumn(width="large"),
        },
    )


render()
