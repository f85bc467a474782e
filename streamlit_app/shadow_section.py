"""The Models page's shadow section: what a model's challenger traded in shadow.

One row per bot and challenger version (`shadow_runs`, written by the live engine:
live/engine/shadow.py): decisions, entries, open and closed shadow positions and their net
PnL after fees. These are paper results that never reached a venue, kept apart from the
Orders page; the lifecycle DAG's shadow gate compares them with the champion's live trades
(its decisions are in the promotion history, gates `shadow_min_trades` and
`shadow_beats_champion`).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import streamlit as st

from streamlit_app import display
from tradepipe.db import ShadowRunView


def render(runs: Sequence[ShadowRunView], challenger: str | None) -> None:
    title = "**Shadow runs** (the challenger on paper beside the champion, never sent)"
    st.markdown(title)
    if challenger is not None:
        st.caption(f":material/visibility: challenger: version {challenger}")
    if not runs:
        st.info("No shadow runs for this model (a spec in shadow mode makes a challenger).")
        return
    st.dataframe(frame(runs), hide_index=True, column_config=display.narrow("strategy hash"))


def frame(runs: Sequence[ShadowRunView]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "bot": run.bot_name,
                "challenger version": run.model_version,
                "symbol": run.symbol,
                "started": display.when(run.started_at),
                "updated": display.when(run.updated_at),
                "decisions": run.decisions,
                "entries": run.entries,
                "open": run.open_positions,
                "closed": run.closed_positions,
                "net PnL": round(run.net_pnl, 4),
                "strategy hash": run.strategy_hash,
            }
            for run in runs
        ]
    )
