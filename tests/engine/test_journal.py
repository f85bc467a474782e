"""The write journal on its own, against a real SQLite database: replay applies each write
once (a replay interrupted before the journal was emptied applies nothing twice), a torn
last line is ignored, an unreadable line or a write the database refuses is kept aside with
a log line and the others are applied."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from live.engine.events import EngineEvent
from live.engine.journal import WriteJournal, replay, write_from_dict, write_to_dict
from live.engine.persistence import (
    BotBatch,
    BotStatusWrite,
    ControlWrite,
    EventWrite,
    StrategySourceWrite,
)
from live.engine.recorder import EngineDatabase, is_unavailable
from tests.engine.helpers import query
from tradepipe.enums import BotStatus

AT = datetime(2024, 1, 1, tzinfo=UTC)


def events(count: int, first: int = 0) -> list[tuple[int, EventWrite]]:
    return [
        (seq, EventWrite(EngineEvent("journal_test", f"event {seq}", None, {"seq": seq}, AT)))
        for seq in range(first + 1, first + count + 1)
    ]


def replay_into(url: str, journal: WriteJournal) -> tuple[int, int, int]:
    database = EngineDatabase(url, busy_timeout_ms=1_000)
    try:
        report = replay(journal, database.session, is_unavailable=is_unavailable)
    finally:
        database.dispose()
    return report.applied, report.skipped, report.rejected


def recorded(url: str) -> list[int]:
    rows = query(url, "SELECT payload FROM events WHERE kind = 'journal_test' ORDER BY id")
    return [int(json.loads(r.payload)["seq"]) for r in rows]


@pytest.fixture
def journal(tmp_path: Path) -> WriteJournal:
    return WriteJournal(tmp_path / "trading.db.journal.jsonl")


def test_every_write_kind_comes_back_equal() -> None:
    for write in (
        events(1)[0][1],
        BotStatusWrite(3, BotStatus.ERROR, "boom"),
        BotStatusWrite(3, BotStatus.ERROR, "boom", epoch=4),  # the lease fence needs it
        ControlWrite("kill_switch", {"engaged": True, "reason": "r"}, "ops"),
        StrategySourceWrite("dip", "ab" * 32, b"class Dip:\n    pass\n\xff"),  # bytes kept
    ):
        assert write_from_dict(write_to_dict(write)) == write


def test_replay_applies_each_write_once(database_url: str, journal: WriteJournal) -> None:
    journal.append(events(5))
    kept = journal.path.read_bytes()
    assert replay_into(database_url, journal) == (5, 0, 0)
    assert journal.path.stat().st_size == 0
    assert recorded(database_url) == [1, 2, 3, 4, 5]
    # a stop between the replay's commit and the emptying: the same lines again, plus more
    journal.path.write_bytes(kept)
    journal.append(events(2, first=5))
    assert replay_into(database_url, journal) == (2, 5, 0)
    assert recorded(database_url) == [1, 2, 3, 4, 5, 6, 7]


def test_the_recorders_watermark_covers_what_it_committed(
    database_url: str, journal: WriteJournal
) -> None:
    """Writes journaled during an outage, then committed (with the watermark) when the
    database came back, then a kill before the journal was emptied: nothing is replayed."""
    entries = events(4)
    journal.append(entries)
    database = EngineDatabase(database_url, busy_timeout_ms=1_000)
    try:
        database.write([w for _, w in entries] + [journal.watermark(entries[-1][0])], [])
    finally:
        database.dispose()
    assert replay_into(database_url, journal) == (0, 4, 0)
    assert recorded(database_url) == [1, 2, 3, 4]


def test_a_torn_last_line_is_ignored(
    database_url: str, journal: WriteJournal, caplog: pytest.LogCaptureFixture
) -> None:
    journal.append(events(3))
    with journal.path.open("ab") as file:
        file.write(b'{"generation": "x", "seq": 4, "wri')  # a kill mid-append
    with caplog.at_level(logging.WARNING):
        assert replay_into(database_url, journal) == (3, 0, 0)
    assert "last line torn" in caplog.text
    assert not journal.rejected_path.exists()


def test_an_unreadable_line_is_kept_aside_and_the_others_applied(
    database_url: str, journal: WriteJournal, caplog: pytest.LogCaptureFixture
) -> None:
    journal.append(events(2))
    with journal.path.open("ab") as file:
        file.write(b'{"generation": "g", "seq": 3, "write": {"type": "nonsense"}}\n')
    journal.append(events(1, first=3))
    with caplog.at_level(logging.ERROR):
        assert replay_into(database_url, journal) == (3, 0, 0)
    assert "line 3 unreadable" in caplog.text and "unknown write type" in caplog.text
    assert b"nonsense" in journal.rejected_path.read_bytes()
    assert recorded(database_url) == [1, 2, 4]


def test_a_write_the_database_refuses_is_kept_aside(
    database_url: str, journal: WriteJournal, caplog: pytest.LogCaptureFixture
) -> None:
    refused = BotBatch(999, "ghost", book={"positions": []})  # no such bot: a foreign key
    journal.append([*events(1), (2, refused), *events(1, first=2)])
    with caplog.at_level(logging.ERROR):
        assert replay_into(database_url, journal) == (2, 0, 1)
    assert "refused by the database" in caplog.text
    assert b"ghost" in journal.rejected_path.read_bytes()
    assert recorded(database_url) == [1, 3]
