"""The decision log: what the live engine decided on each closed candle, and from what.

One row per bot decision: the candle (symbol, timeframe, start), the features the engine
computed for it (names and values, exact float64, with the feature spec's hash), and for
the bot the strategy and its content hash, the bot's config as it was (JSON), the model
and version, the probability the model gave, the strategy's answer and what became of an
entry. The review of a bot (`tradepipe live review`) reads it back with `read_decisions`
and replays the same candles through the backtester with the same strategy version
(`tradepipe.db.strategy_source`), config and model version.

Layout (hive-style, partitioned by the candle's UTC day)::

    <root>/day=2024-01-01/part-<first candle ms>-<random>.parquet

Each append writes new part files and never rewrites one, so a writer that dies loses at
most the batch it was writing; `compact` merges a day's parts into one file once the day is
over (atomically: the merged file replaces the parts only after it is complete). The size
is bounded by `prune`: partitions older than `retention_days` before the newest day
written are deleted (market days, not wall days, so a replay of 2024 keeps its decisions).
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

__all__ = [
    "DECISION_SCHEMA",
    "DecisionKind",
    "DecisionLogError",
    "DecisionRecord",
    "append_decisions",
    "compact",
    "decision_days",
    "feature_frame",
    "prune",
    "read_decisions",
]

DAY_MS = 86_400_000
_DAY_DIR = re.compile(r"^day=(\d{4}-\d{2}-\d{2})$")

DECISION_SCHEMA = pa.schema(
    [
        ("decided_ms", pa.int64()),  # market time of the decision (the candle's close or later)
        ("candle_start_ms", pa.int64()),
        ("symbol", pa.string()),
        ("timeframe", pa.string()),
        ("bot", pa.string()),
        ("strategy", pa.string()),
        ("strategy_hash", pa.string()),
        ("bot_config", pa.string()),  # the bot's config (JSON): barriers, strategy parameters
        ("model", pa.string()),  # null: the bot uses no model
        ("model_version", pa.string()),
        ("probability", pa.float64()),  # null: no model, or the model failed on this row
        ("decision", pa.string()),  # DecisionKind
        ("limit_price", pa.float64()),
        ("reason", pa.string()),
        ("entry", pa.string()),  # placed, blocked, refused, invalid; null: no entry asked
        ("feature_spec_hash", pa.string()),
        ("feature_names", pa.list_(pa.string())),
        ("feature_values", pa.list_(pa.float64())),
    ]
)


class DecisionLogError(ValueError):
    """A decision log that cannot be read or written as asked; nothing was changed."""


class DecisionKind(StrEnum):
    """The strategy's answer to one candle (what became of an entry is `entry`)."""

    ENTER = "enter"  # the strategy asked for an entry
    HOLD = "hold"  # the strategy answered None
    EXIT = "exit"  # the strategy asked to close open positions (`entry` says which)
    FAILED = "failed"  # the strategy raised or answered nonsense (the bot went to error)


# Not frozen, on purpose: the engine builds one per bot decision inside its trading step,
# and a frozen dataclass of this many fields takes 4.3 us to build against 1.2 us. Nobody
# changes one after it is built (the engine hands it over and forgets it).
@dataclass(slots=True)
class DecisionRecord:
    decided_ms: int
    candle_start_ms: int
    symbol: str
    timeframe: str
    bot: str
    strategy: str
    strategy_hash: str
    bot_config: str
    model: str | None
    model_version: str | None
    probability: float | None
    decision: str
    limit_price: float | None
    reason: str | None
    entry: str | None
    feature_spec_hash: str
    feature_names: tuple[str, ...]
    feature_values: tuple[float, ...]


def _day_of(time_ms: int) -> str:
    return str(np.datetime64(int(time_ms), "ms").astype("datetime64[D]"))


def _day_start_ms(day: str) -> int:
    return int(np.datetime64(day, "D").astype("datetime64[ms]").astype(np.int64))


def append_decisions(root: Path, records: Sequence[DecisionRecord]) -> int:
    """Write `records` as new part files, one per day they fall in; returns rows written."""
    by_day: dict[str, list[DecisionRecord]] = {}
    for record in records:
        by_day.setdefault(_day_of(record.candle_start_ms), []).append(record)
    for day, rows in sorted(by_day.items()):
        directory = Path(root) / f"day={day}"
        directory.mkdir(parents=True, exist_ok=True)
        # column by column: a fraction of the Python work (and of the GIL, which the
        # engine's loop needs meanwhile) of building a dict per row
        table = pa.Table.from_arrays(
            [
                pa.array([getattr(row, column.name) for row in rows], type=column.type)
                for column in DECISION_SCHEMA
            ],
            schema=DECISION_SCHEMA,
        )
        first = min(row.candle_start_ms for row in rows)
        _atomic_write(directory / f"part-{first}-{uuid.uuid4().hex[:12]}.parquet", table)
    return len(records)


def decision_days(root: Path) -> list[str]:
    """The days (YYYY-MM-DD) that have a partition, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    days = [m.group(1) for p in root.iterdir() if p.is_dir() and (m := _DAY_DIR.match(p.name))]
    return sorted(days)


def read_decisions(
    root: Path,
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
    bots: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Decisions on candles that start in [start_ms, end_ms), of `bots` (all if None),
    sorted by candle, then decision time, then bot. Columns are DECISION_SCHEMA's."""
    wanted = set(bots) if bots is not None else None
    parts = []
    for day in decision_days(root):
        day_start = _day_start_ms(day)
        if (end_ms is not None and day_start >= end_ms) or (
            start_ms is not None and day_start + DAY_MS <= start_ms
        ):
            continue
        for path in sorted((Path(root) / f"day={day}").glob("*.parquet")):
            try:
                parts.append(pq.read_table(path, schema=DECISION_SCHEMA))
            except (OSError, pa.ArrowException) as error:
                message = f"decision log file {path} cannot be read: {error}"
                raise DecisionLogError(message) from None
    table = pa.concat_tables(parts) if parts else DECISION_SCHEMA.empty_table()
    frame: pd.DataFrame = table.to_pandas()
    keep = np.ones(len(frame), dtype=bool)
    starts = frame["candle_start_ms"].to_numpy()
    if start_ms is not None:
        keep &= starts >= start_ms
    if end_ms is not None:
        keep &= starts < end_ms
    if wanted is not None:
        keep &= frame["bot"].isin(wanted).to_numpy()
    frame = frame.loc[keep]
    order = ["candle_start_ms", "decided_ms", "bot"]
    return frame.sort_values(order, kind="stable").reset_index(drop=True)


def feature_frame(decisions: pd.DataFrame) -> pd.DataFrame:
    """The recorded features of `decisions` (rows of one feature spec, e.g. one bot's) as a
    frame: one column per feature, in the spec's order, indexed by candle_start_ms; what a
    review compares with the batch features of the recorded candles."""
    specs = set(decisions["feature_spec_hash"])
    if len(specs) > 1:
        raise DecisionLogError(
            f"decisions of {len(specs)} feature specs: select one spec's rows first "
            "(e.g. by feature_spec_hash)"
        )
    names = list(decisions["feature_names"].iloc[0]) if len(decisions) else []
    values = [list(row) for row in decisions["feature_values"]]
    index = pd.Index(decisions["candle_start_ms"].to_numpy(), name="candle_start_ms")
    return pd.DataFrame(values, columns=names, index=index, dtype="float64")


def compact(root: Path, day: str) -> bool:
    """Merge the part files of `day` into one (True if there was more than one)."""
    directory = Path(root) / f"day={day}"
    paths = sorted(directory.glob("part-*.parquet"))
    if len(paths) < 2:
        return False
    table = pa.concat_tables(pq.read_table(path, schema=DECISION_SCHEMA) for path in paths)
    indices = pc.sort_indices(
        table, sort_keys=[("candle_start_ms", "ascending"), ("decided_ms", "ascending")]
    )
    first = paths[0].name.split("-")[1]
    merged = directory / f"part-{first}-{uuid.uuid4().hex[:12]}.parquet"
    _atomic_write(merged, table.take(indices))
    for path in paths:  # only after the merged file is complete: a crash here duplicates
        path.unlink()  # nothing, since the merged file's name is not among `paths`
    return True


def prune(root: Path, retention_days: int) -> list[str]:
    """Delete the partitions older than `retention_days` days before the newest one;
    returns the days deleted. `retention_days` < 1 is refused (it would delete today)."""
    if retention_days < 1:
        raise DecisionLogError(f"decision retention must be at least 1 day: {retention_days}")
    days = decision_days(root)
    if not days:
        return []
    newest = np.datetime64(days[-1], "D")
    cutoff = str(newest - np.timedelta64(retention_days, "D"))
    removed = [day for day in days if day <= cutoff]
    for day in removed:
        shutil.rmtree(Path(root) / f"day={day}")
    return removed


def _atomic_write(path: Path, table: pa.Table) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        pq.write_table(table, temporary, compression="zstd")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
