"""Helpers for driving the dashboard with Streamlit's AppTest."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd
import streamlit as st
from streamlit import config as streamlit_config
from streamlit.testing.v1 import AppTest

from streamlit_app.launch import APP_SCRIPT

PAGES = {
    "overview": "Overview",
    "orders": "Orders",
    "bots": "Bots",
    "models": "Models",
    "strategies": "Strategies",
    "reviews": "Reviews",
}
# The first run of a page may import plotly or mlflow: generous, but a hang still fails.
TIMEOUT_SECONDS = 60


@contextmanager
def served_on(address: str | None) -> Iterator[None]:
    """Pretend the server is bound to `address` (AppTest has no server), then restore."""
    previous = streamlit_config.get_option("server.address")
    streamlit_config.set_option("server.address", address)
    try:
        yield
    finally:
        streamlit_config.set_option("server.address", previous)
        st.cache_resource.clear()  # dispose of the engines opened on this test's database
        st.cache_data.clear()


def open_page(at: AppTest, page: str) -> AppTest:
    """Run the app (the Overview is its default page), then switch to `page` if another."""
    at.run(timeout=TIMEOUT_SECONDS)
    if page != "overview":
        at.switch_page(f"screens/{page}.py").run(timeout=TIMEOUT_SECONDS)
    return at


def new_app() -> AppTest:
    return AppTest.from_file(APP_SCRIPT, default_timeout=TIMEOUT_SECONDS)


def page_text(at: AppTest) -> str:
    """Every text the page shows (titles, markdown, alerts, metrics, tab labels, table
    cells), one item per line, to look for seeded values in."""
    parts: list[str] = []
    for root in (at.main, at.sidebar):
        _collect(root, parts)
    return "\n".join(parts)


def _collect(node: Any, parts: list[str]) -> None:
    children = getattr(node, "children", None)
    if isinstance(children, dict):
        label = getattr(node, "label", None)
        if isinstance(label, str):
            parts.append(label)
        for child in children.values():
            _collect(child, parts)
        return
    for attribute in ("label", "value"):
        try:
            value = getattr(node, attribute)
        except Exception:  # elements AppTest cannot decode (charts) have no text to give
            continue
        if isinstance(value, pd.DataFrame):
            parts.append(value.to_string())
        elif isinstance(value, str | int | float):
            parts.append(str(value))
