"""A bot's decision log split into segments where its strategy version, model version or
config changed: each segment is replayed with the versions that were live on it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from research.review.live_side import live_answers, segments_of
from tradepipe.marketdata.decisions import DecisionRecord, append_decisions, read_decisions

T0 = 1_704_067_200_000


def record(second: int, *, strategy_hash: str = "a" * 64, version: str | None = "1",
           config: str = '{"max_open_positions": 1}', decision: str = "hold",
           limit: float | None = None, entry: str | None = None) -> DecisionRecord:  # fmt: skip
    return DecisionRecord(
        decided_ms=T0 + (second + 1) * 1_000,
        candle_start_ms=T0 + second * 1_000,
        symbol="BTCUSDT",
        timeframe="1s",
        bot="b",
        strategy="s",
        strategy_hash=strategy_hash,
        bot_config=config,
        model="m" if version is not None else None,
        model_version=version,
        probability=0.5 if version is not None else None,
        decision=decision,
        limit_price=limit,
        reason=None,
        entry=entry,
        feature_spec_hash="f" * 64,
        feature_names=("x",),
        feature_values=(1.0,),
    )


def decisions(tmp_path: Path, records: list[DecisionRecord]) -> pd.DataFrame:
    append_decisions(tmp_path, records)
    return read_decisions(tmp_path, bots=["b"])


def test_each_change_of_version_or_config_starts_a_segment(tmp_path: Path) -> None:
    rows = decisions(
        tmp_path,
        [
            record(0),
            record(1),
            record(2, version="2"),  # a new champion
            record(3, version="2", strategy_hash="b" * 64),  # an edited strategy
            record(4, version="2", strategy_hash="b" * 64, config='{"max_open_positions": 2}'),
            record(5, version="2", strategy_hash="b" * 64, config='{"max_open_positions": 2}'),
            record(6),  # back to the first: a segment of its own, not merged with the first
        ],
    )
    segments = segments_of(rows)
    assert [len(segment.rows) for segment in segments] == [2, 1, 1, 2, 1]
    assert [segment.key["model_version"] for segment in segments] == ["1", "2", "2", "2", "1"]
    assert segments[2].key["strategy_hash"] == "b" * 64
    assert segments[3].key["bot_config"] == '{"max_open_positions": 2}'
    assert list(segments[3].rows["candle_start_ms"]) == [T0 + 4_000, T0 + 5_000]


def test_a_bot_without_a_model_is_one_segment(tmp_path: Path) -> None:
    rows = decisions(tmp_path, [record(second, version=None) for second in range(3)])
    [segment] = segments_of(rows)
    assert segment.key["model"] is None and segment.key["model_version"] is None
    assert len(segment.rows) == 3


def test_live_answers_keep_the_limit_and_what_became_of_the_entry(tmp_path: Path) -> None:
    rows = decisions(
        tmp_path,
        [
            record(0),
            record(1, decision="enter", limit=99.5, entry="placed"),
            record(2, decision="enter", entry="blocked"),
        ],
    )
    answers = live_answers(rows)
    assert answers[T0] == (answers[T0][0], None) and answers[T0][0].kind == "hold"
    assert answers[T0 + 1_000][0].limit_price == 99.5 and answers[T0 + 1_000][1] == "placed"
    assert answers[T0 + 2_000][0].limit_price is None and answers[T0 + 2_000][1] == "blocked"
