"""Helpers of the training tests: the demo spec made small, and a TOML writer for specs."""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_SPEC = REPO_ROOT / "research" / "specs" / "btcusdt_1m.toml"
STRATEGY = REPO_ROOT / "strategies" / "lgbm_threshold.py"
MODEL = "btcusdt_1m_triple_barrier"
START = "2024-03-01"
END = "2024-03-15"

SpecWriter = Callable[..., Path]


def ms(day: str) -> int:
    return int(pd.Timestamp(day, tz="UTC").timestamp() * 1000)


def small_spec(**changes: Any) -> dict[str, Any]:
    """The demo spec made small: two weeks, few rounds, a low threshold so models trade.

    `changes` maps "section.key" (or "key") to a new value; None deletes the key.
    """
    spec = tomllib.loads(DEMO_SPEC.read_text())
    spec = copy.deepcopy(spec)
    spec["data"] = {"reference": "synthetic/BTCUSDT/1m", "start": START, "end": END}
    spec["strategy"]["file"] = str(STRATEGY)
    spec["strategy"]["bot"]["confidence_threshold"] = 0.4
    spec["training"].update(num_boost_round=40, early_stopping_rounds=10)
    spec["lightgbm"].update(min_data_in_leaf=100)
    spec["gates"] = {"min_trades": 1, "min_sharpe": -1000.0, "max_drawdown": 1.0}
    for dotted, value in changes.items():
        *sections, key = dotted.split(".")
        table = spec
        for section in sections:
            table = table.setdefault(section, {})
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
    return spec


def to_toml(data: dict[str, Any], prefix: str = "") -> str:
    """Enough TOML for specs: scalars, lists, inline empty tables and nested tables."""
    lines, tables = [], []
    for key, value in data.items():
        if isinstance(value, dict) and value:
            tables.append((key, value))
        else:
            lines.append(f"{key} = {_value(value)}")
    text = "\n".join(lines) + "\n"
    for key, value in tables:
        name = f"{prefix}.{key}" if prefix else key
        text += f"\n[{name}]\n" + to_toml(value, name)
    return text


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, date):  # a TOML local date or date-time
        return value.isoformat()
    return repr(value)
