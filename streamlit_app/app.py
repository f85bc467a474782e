"""The dashboard's entry script (`streamlit run streamlit_app/app.py`): page setup, access
check, navigation. Each page lives in streamlit_app/screens/ and reads through the kernel's
query layer; the only writes are the Models page's operator actions, through the kernel
(tradepipe.model_ops), behind the same access check as every page."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from streamlit_app import access, context

SCREENS = Path(__file__).resolve().parent / "screens"

st.set_page_config(page_title="tradepipe", page_icon=":material/monitoring:", layout="wide")
current = context.settings()
if not access.allowed(current.dashboard_password):
    st.stop()

page = st.navigation(
    [
        st.Page(SCREENS / "overview.py", title="Overview", icon=":material/monitoring:"),
        st.Page(SCREENS / "orders.py", title="Orders", icon=":material/receipt_long:"),
        st.Page(SCREENS / "bots.py", title="Bots", icon=":material/smart_toy:"),
        st.Page(SCREENS / "models.py", title="Models", icon=":material/model_training:"),
        st.Page(SCREENS / "strategies.py", title="Strategies", icon=":material/description:"),
        st.Page(SCREENS / "reviews.py", title="Reviews", icon=":material/fact_check:"),
    ]
)
with st.sidebar:
    context.live_toggle()
    st.caption(f"Database: `{context.database_label(current)}`")
    st.caption("Times are UTC.")
page.run()
