"""Small formatters shared by the pages: hashes, ages, statuses, money, key=value details."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import pandas as pd
import streamlit as st
from pandas.io.formats.style import Styler

from tradepipe.enums import BotStatus

__all__ = [
    "HASH_CHARS",
    "age",
    "bot_status_label",
    "details",
    "duration",
    "money",
    "narrow",
    "percent",
    "position_link",
    "position_links",
    "short_hash",
    "status_styles",
    "when",
]

HASH_CHARS = 12  # enough to tell versions apart at a glance; the full hash is in the data
# Keys whose values are never shown, whatever component reported them.
_SECRET_KEY = re.compile(r"pass|secret|token|key|credential|auth", re.IGNORECASE)

# Words, not emoji, in tables: emoji depend on the viewer's fonts; colour comes from
# `status_styles` instead.
_GOOD = "color: #1a7f37; font-weight: 600"
_BAD = "color: #cf222e; font-weight: 600"
_WARN = "color: #bc4c00; font-weight: 600"
_STATUS_STYLE = {
    "running": _GOOD,
    "valid": _GOOD,
    "promoted": _GOOD,
    "passed": _GOOD,
    "error": _BAD,
    "model_error": _BAD,
    "model_guarded": _BAD,
    "invalid": _BAD,
    "refused": _BAD,
    "failed": _BAD,
    "stale": _WARN,
    "removed": _WARN,
}


def short_hash(value: str | None) -> str:
    return "" if not value else value[:HASH_CHARS]


def duration(seconds: float | None) -> str:
    """3 s, 4 min 5 s, 2 h 5 min, 3 d 4 h; empty when unknown."""
    if seconds is None:
        return ""
    whole = max(0, round(seconds))
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


def age(seconds: float | None) -> str:
    return "" if seconds is None else f"{duration(seconds)} ago"


def when(moment: datetime | None) -> str:
    """A UTC time to the second, as every page shows times."""
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def money(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+,.2f}"


def percent(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:.0%}"


def bot_status_label(status: BotStatus, *, stale: bool = False) -> str:
    """The bot's status, or `stale` when it should be beating and is not."""
    return BotStatus.STALE.value if stale and status is not BotStatus.ERROR else status.value


def status_styles(frame: pd.DataFrame, columns: Sequence[str], *, precision: int = 2) -> Styler:
    """`frame` with its status words in `columns` coloured (green good, red bad, orange
    stale) and its floats shown to `precision` decimals (a Styler's own default is 6)."""
    return frame.style.format(precision=precision).map(
        lambda value: _STATUS_STYLE.get(str(value), ""), subset=list(columns)
    )


def position_link(position_id: int | None) -> str | None:
    """A link to the position's drill-down on the Orders page (relative: pages are all
    top-level, so it resolves from any of them)."""
    return None if position_id is None else f"orders?position={position_id}"


def position_links(column: str = "position") -> dict[str, Any]:
    """Column config showing `position_link` cells as the position's number."""
    return {
        column: st.column_config.LinkColumn(
            display_text=r"position=(\d+)$", help="open the position on the Orders page"
        )
    }


def narrow(*columns: str) -> dict[str, Any]:
    """Column config showing long values (hashes, errors) in a narrow column: the full
    value is still in the cell, on hover and when copied."""
    return {column: st.column_config.TextColumn(width="medium") for column in columns}


def details(values: Mapping[str, Any]) -> str:
    """`key=value` pairs of a reported mapping, one level deep, secrets left out: readable
    in a table cell where a JSON dump would not be."""
    parts = []
    for key, value in values.items():
        if _SECRET_KEY.search(key):
            continue
        if isinstance(value, Mapping):
            inner = ", ".join(
                f"{k}={_scalar(v)}" for k, v in value.items() if not _SECRET_KEY.search(str(k))
            )
            parts.append(f"{key}: {inner}")
        else:
            parts.append(f"{key}={_scalar(value)}")
    return "; ".join(parts)


def _scalar(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return ", ".join(_scalar(item) for item in value)
    if isinstance(value, Mapping):
        return "{…}"
    return str(value)
