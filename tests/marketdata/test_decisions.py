"""The decision log: day partitions written as parts, read back exactly (features bit for
bit), filtered, compacted once a day is over, pruned to its retention; bad input refused."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from tradepipe.marketdata.decisions import (
    DAY_MS,
    DecisionKind,
    DecisionLogError,
    DecisionRecord,
    append_decisions,
    compact,
    decision_days,
    feature_frame,
    prune,
    read_decisions,
)

JAN_1 = 1_704_067_200_000  # 2024-01-01T00:00:00Z


def record(start_ms: int, bot: str = "a", **changes: object) -> DecisionRecord:
    values: dict[str, object] = {
        "decided_ms": start_ms + 60_000,
        "candle_start_ms": start_ms,
        "symbol": "BTCUSDT",
        "timeframe": "1m",
        "bot": bot,
        "strategy": "lgbm_threshold",
        "strategy_hash": "ab" * 32,
        "bot_config": '{"capital_per_trade": 100.0}',
        "model": "btc_model",
        "model_version": "3",
        "probability": 0.1 + 0.2,  # not a short decimal: must come back bit for bit
        "decision": DecisionKind.ENTER,
        "limit_price": None,
        "reason": "p>t",
        "entry": "placed",
        "feature_spec_hash": "cd" * 32,
        "feature_names": ("ret_1", "rsi_14"),
        "feature_values": (1 / 3, math.pi),
    }
    values.update(changes)
    return DecisionRecord(**values)  # type: ignore[arg-type]


def test_records_come_back_exactly_by_day_and_filtered(tmp_path: Path) -> None:
    rows = [
        record(JAN_1, "a"),
        record(JAN_1, "b", model=None, model_version=None, probability=None, entry=None,
               decision=DecisionKind.HOLD, reason=None),
        record(JAN_1 + DAY_MS + 60_000, "a", limit_price=99.5),
    ]  # fmt: skip
    assert append_decisions(tmp_path, rows) == 3
    assert decision_days(tmp_path) == ["2024-01-01", "2024-01-02"]
    frame = read_decisions(tmp_path)
    assert list(frame["bot"]) == ["a", "b", "a"]
    first = frame.iloc[0]
    assert first["probability"] == 0.1 + 0.2
    assert tuple(first["feature_values"]) == (1 / 3, math.pi)
    assert tuple(first["feature_names"]) == ("ret_1", "rsi_14")
    hold = frame.iloc[1]
    assert pd.isna(hold["model_version"]) and pd.isna(hold["probability"])
    assert hold["decision"] == "hold" and pd.isna(hold["entry"])
    assert frame.iloc[2]["limit_price"] == 99.5
    assert list(read_decisions(tmp_path, bots=["b"])["bot"]) == ["b"]
    later = read_decisions(tmp_path, start_ms=JAN_1 + 1)
    assert list(later["candle_start_ms"]) == [JAN_1 + DAY_MS + 60_000]
    assert len(read_decisions(tmp_path, end_ms=JAN_1 + 1)) == 2


def test_an_empty_log_reads_as_an_empty_frame(tmp_path: Path) -> None:
    frame = read_decisions(tmp_path / "none yet")
    assert frame.empty and "feature_values" in frame.columns
    assert prune(tmp_path / "none yet", 3) == []


def test_appends_add_parts_and_compaction_merges_them(tmp_path: Path) -> None:
    for minute in range(3):
        append_decisions(tmp_path, [record(JAN_1 + minute * 60_000)])
    day = tmp_path / "day=2024-01-01"
    assert len(list(day.glob("*.parquet"))) == 3
    before = read_decisions(tmp_path)
    assert compact(tmp_path, "2024-01-01") is True
    assert len(list(day.glob("*.parquet"))) == 1
    assert read_decisions(tmp_path).equals(before)
    assert compact(tmp_path, "2024-01-01") is False  # one part: nothing to do


def test_retention_deletes_the_days_before_it(tmp_path: Path) -> None:
    append_decisions(tmp_path, [record(JAN_1 + day * DAY_MS) for day in range(5)])
    assert prune(tmp_path, 3) == ["2024-01-01", "2024-01-02"]
    assert decision_days(tmp_path) == ["2024-01-03", "2024-01-04", "2024-01-05"]
    assert len(read_decisions(tmp_path)) == 3
    assert prune(tmp_path, 3) == []  # the newest day counts from the data, not the wall


def test_bad_retention_and_unreadable_files_are_refused(tmp_path: Path) -> None:
    append_decisions(tmp_path, [record(JAN_1)])
    with pytest.raises(DecisionLogError, match="at least 1 day"):
        prune(tmp_path, 0)
    assert decision_days(tmp_path) == ["2024-01-01"]  # nothing deleted
    (tmp_path / "day=2024-01-01" / "part-0-broken.parquet").write_bytes(b"not parquet")
    with pytest.raises(DecisionLogError, match=r"part-0-broken\.parquet cannot be read"):
        read_decisions(tmp_path)


def test_the_features_of_one_spec_come_back_as_a_frame(tmp_path: Path) -> None:
    append_decisions(tmp_path, [record(JAN_1), record(JAN_1 + 60_000, feature_values=(2.0, 3.0))])
    frame = feature_frame(read_decisions(tmp_path))
    assert list(frame.columns) == ["ret_1", "rsi_14"]
    assert list(frame.index) == [JAN_1, JAN_1 + 60_000]
    assert frame.loc[JAN_1].tolist() == [1 / 3, math.pi]
    append_decisions(tmp_path, [record(JAN_1 + 120_000, feature_spec_hash="ef" * 32)])
    with pytest.raises(DecisionLogError, match="2 feature specs"):
        feature_frame(read_decisions(tmp_path))
