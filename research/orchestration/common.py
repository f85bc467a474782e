"""The data interval a task works on, and what every task body shares.

Tasks are keyed by their run's data interval, never by the wall clock: re-running a run (a
retry, a clear, a backfill) repeats exactly the same work. Airflow 3 lets a run be triggered
without a logical date, and then it has no data interval; such a run gets the schedule
period that ended last before the run's `run_after`, which is stored with the run, so even
then a retry sees the same interval; so does a run an asset event triggered (model_lifecycle
after market_data), with the producer's period.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from tradepipe.db import create_engine_for, session_scope, upgrade_database

__all__ = ["DataInterval", "OrchestrationError", "json_safe", "trading_session"]


class OrchestrationError(Exception):
    """A task input a user can fix (config, folder, run without an interval); one line."""


@dataclass(frozen=True, slots=True)
class DataInterval:
    """[start, end) in UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise OrchestrationError("a data interval needs timezone-aware datetimes")
        if self.end <= self.start:
            raise OrchestrationError(
                f"empty data interval [{self.start.isoformat()}, {self.end.isoformat()})"
            )

    @classmethod
    def from_context(
        cls,
        context: Mapping[str, Any],
        period: timedelta,
        *,
        asset_period: timedelta | None = None,
    ) -> DataInterval:
        """The run's data interval from an Airflow task context; for a run without one, the
        `period` that ended last before the run's `run_after` (see the module docstring).
        A run an asset event triggered gets `asset_period` instead, when given: whatever
        Airflow derives from the events' times is not on any grid, and retries must repeat
        the same interval."""
        dag_run = context.get("dag_run")
        run_after = getattr(dag_run, "run_after", None)
        run_type = getattr(dag_run, "run_type", None)
        triggered = getattr(run_type, "value", run_type) == "asset_triggered"
        if asset_period is not None and triggered and run_after is not None:
            return cls.ending_before(_utc(run_after), asset_period)
        start = context.get("data_interval_start")
        end = context.get("data_interval_end")
        if start is not None and end is not None and end > start:
            return cls(_utc(start), _utc(end))
        if run_after is None:
            raise OrchestrationError(
                "this run has neither a data interval nor a run_after time: trigger it with "
                "a logical date"
            )
        return cls.ending_before(_utc(run_after), period)

    @classmethod
    def ending_before(cls, moment: datetime, period: timedelta) -> DataInterval:
        """The whole `period` (counted from the Unix epoch, in UTC) that ended last at or
        before `moment`: [00:00, 01:00) for 01:30 and an hour."""
        size = int(period.total_seconds() * 1000)
        if size <= 0:
            raise OrchestrationError(f"period {period} is not positive")
        end_ms = _ms(moment) - _ms(moment) % size
        return cls(_from_ms(end_ms - size), _from_ms(end_ms))

    @property
    def start_ms(self) -> int:
        return _ms(self.start)

    @property
    def end_ms(self) -> int:
        return _ms(self.end)

    def to_dict(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}


def json_safe(value: Any) -> Any:
    """`value` with NaN as None and infinities as text, through mappings and sequences:
    XCom and the database's JSON columns (PostgreSQL's above all) refuse them."""
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    return value


@contextmanager
def trading_session(database_url: str) -> Iterator[Session]:
    """One transaction on the trading database, migrated to head first (a fresh embedded
    database is created on the first task that needs it)."""
    upgrade_database(database_url)
    engine = create_engine_for(database_url)
    try:
        with session_scope(engine) as session:
            yield session
    finally:
        engine.dispose()


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise OrchestrationError(f"{moment.isoformat()} has no time zone")
    # A plain datetime, not pendulum's subclass: results must be JSON- and pickle-simple.
    return datetime.fromtimestamp(moment.timestamp(), UTC)


def _ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def _from_ms(time_ms: int) -> datetime:
    return datetime.fromtimestamp(time_ms / 1000, UTC)
