"""Relative training windows: a spec with `[data] lookback_days` trains on the days that end
where its run's data ends, so each scheduled run sees the recent market; a fixed window is
still cut at the run's end. Pure window arithmetic, then a real dataset from the store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from research.orchestration.common import DataInterval
from research.orchestration.lifecycle import build_spec_dataset
from research.training import SpecError, Workspace, load_spec
from research.training.spec import DataSection
from tests.training.helpers import SpecWriter, ms

DAY_MS = 86_400_000


def test_a_lookback_window_ends_where_the_run_s_data_ends() -> None:
    relative = DataSection(reference="synthetic/BTCUSDT/1m", lookback_days=3)
    until = ms("2024-03-10")
    assert relative.window(until) == (until - 3 * DAY_MS, until)
    assert relative.window(until + DAY_MS) == (until - 2 * DAY_MS, until + DAY_MS)
    capped = DataSection(reference="x", lookback_days=1.5, end=datetime(2024, 3, 5, tzinfo=UTC))
    assert capped.window(until) == (ms("2024-03-05") - 36 * 3_600_000, ms("2024-03-05"))
    with pytest.raises(ValueError, match="needs the time the run's data ends"):
        relative.window(None)
    fixed = DataSection(reference="x", start=datetime(2024, 3, 1, tzinfo=UTC))
    assert fixed.window(until) == (ms("2024-03-01"), until)
    assert fixed.window(None) == (ms("2024-03-01"), None)


def test_start_and_lookback_days_together_are_refused(write_spec: SpecWriter) -> None:
    with pytest.raises(SpecError, match="give start or lookback_days, not both"):
        load_spec(write_spec(**{"data.lookback_days": 2.0}))
    with pytest.raises(SpecError, match="lookback_days"):
        load_spec(write_spec(**{"data.start": None, "data.lookback_days": -1.0}))


def test_each_run_trains_on_the_days_before_its_interval_end(
    write_spec: SpecWriter, workspace: Workspace
) -> None:
    path = write_spec(**{"data.start": None, "data.end": None, "data.lookback_days": 4.0})
    references = []
    for day in ("2024-03-08", "2024-03-12"):
        end = datetime.fromisoformat(day).replace(tzinfo=UTC)
        interval = DataInterval(end - timedelta(days=1), end)
        references.append(build_spec_dataset(str(path), interval, workspace))
    for reference, day in zip(references, ("2024-03-08", "2024-03-12"), strict=True):
        assert reference["end_ms"] == ms(day) and reference["start_ms"] == ms(day) - 4 * DAY_MS
        assert reference["start_ms"] <= reference["first_start_ms"]
        assert reference["last_end_ms"] <= reference["end_ms"]
        # every minute of the four days but the synthetic market's quiet ones
        assert 0.9 * 4 * 24 * 60 < reference["candles"] <= 4 * 24 * 60
    assert references[0]["data_hash"] != references[1]["data_hash"]
