"""The lease rules in the database (tradepipe/db/leases.py) on the real PostgreSQL server,
the settings that bound them, and `tradepipe engines list` on SQLite."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from app.cli import app
from tests.engine.helpers import add_bots, config_for, execute, query
from tradepipe.db import create_engine_for, session_scope
from tradepipe.db.leases import (
    claim_leases,
    lease_holds,
    leases_held,
    list_leases,
    release_leases,
)


def _claim(
    url: str, owner: str, ids: list[int], max_bots: int = 10, ttl: float = 30.0
) -> dict[int, int]:
    engine = create_engine_for(url)
    try:
        with session_scope(engine) as session:
            return claim_leases(session, owner, ids, ttl_seconds=ttl, max_bots=max_bots)
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_claims_respect_owners_capacity_and_expiry_and_each_takeover_bumps_the_epoch(
    postgres_url: str, strategies_dir: Path
) -> None:
    add_bots(postgres_url, strategies_dir, [(f"b{i}", "always") for i in range(4)])
    ids = [row.id for row in query(postgres_url, "SELECT id FROM bots ORDER BY id")]
    assert _claim(postgres_url, "a", ids, max_bots=3) == dict.fromkeys(ids[:3], 1)
    assert _claim(postgres_url, "b", ids, max_bots=3) == {ids[3]: 1}  # a's are live
    assert _claim(postgres_url, "a", ids, max_bots=3) == dict.fromkeys(ids[:3], 1)  # renewed
    # a is gone: its leases run out, b takes them within its capacity, epoch 2
    execute(postgres_url, "UPDATE bot_leases SET expires_at = now() WHERE owner = 'a'")
    assert _claim(postgres_url, "b", ids, max_bots=3) == {ids[3]: 1, ids[0]: 2, ids[1]: 2}
    # capacity lowered: b gives the excess up at once, its epoch kept for the next owner
    assert _claim(postgres_url, "b", ids, max_bots=1) == {ids[0]: 2}
    assert _claim(postgres_url, "c", ids, max_bots=10) == {ids[1]: 3, ids[2]: 2, ids[3]: 2}
    engine = create_engine_for(postgres_url)
    try:
        with session_scope(engine) as session:
            assert lease_holds(session, ids[1], "c", 3)
            assert not lease_holds(session, ids[1], "b", 2)  # b's epoch is stale
            assert not lease_holds(session, ids[1], "c", None)
            release_leases(session, "c")
        with session_scope(engine) as session:
            views = {view.bot: view for view in list_leases(session)}
    finally:
        engine.dispose()
    assert views["b0"].owner == "b" and not views["b0"].expired
    assert all(views[name].expired for name in ("b1", "b2", "b3"))
    assert views["b1"].epoch == 3 and views["b1"].held_seconds >= 0


@pytest.mark.postgres
def test_a_write_in_flight_never_holds_its_owner_s_renewal_back_but_holds_off_a_takeover(
    postgres_url: str, strategies_dir: Path
) -> None:
    add_bots(postgres_url, strategies_dir, [(f"w{i}", "always") for i in range(3)])
    ids = [row.id for row in query(postgres_url, "SELECT id FROM bots ORDER BY id")]
    assert _claim(postgres_url, "owner", ids) == dict.fromkeys(ids, 1)
    engine = create_engine_for(postgres_url)
    try:
        with session_scope(engine) as writer:  # the fence of a write transaction, open
            held = leases_held(writer, "owner", [(ids[2], 1), (ids[0], 1), (ids[1], 7)])
            assert held == {(ids[2], 1), (ids[0], 1)}  # epoch 7 is not the owner's
            with session_scope(engine) as renewal:
                renewal.execute(sa.text("SET LOCAL lock_timeout = '2s'"))  # waiting fails
                assert claim_leases(
                    renewal, "owner", ids, ttl_seconds=0.05, max_bots=3
                ) == dict.fromkeys(ids, 1)
            time.sleep(0.1)  # the database's clock: the leases have lapsed
            assert _claim(postgres_url, "rival", ids) == {}  # nothing under a write is taken
        assert _claim(postgres_url, "rival", ids) == dict.fromkeys(ids, 2)  # once it is done
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_a_short_ttl_lapses_without_renewal(postgres_url: str, strategies_dir: Path) -> None:
    add_bots(postgres_url, strategies_dir, [("lapse", "always")])
    [bot_id] = [row.id for row in query(postgres_url, "SELECT id FROM bots")]
    # 2 s: a loaded machine may take a while between two claims, each its own connection
    assert _claim(postgres_url, "a", [bot_id], ttl=2.0) == {bot_id: 1}
    assert _claim(postgres_url, "b", [bot_id]) == {}
    gone = "SELECT expires_at < clock_timestamp() AS gone FROM bot_leases"
    while not query(postgres_url, gone)[0].gone:  # the database's clock decides
        time.sleep(0.1)
    assert _claim(postgres_url, "b", [bot_id]) == {bot_id: 2}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"lease_ttl_seconds": 1.0, "heartbeat_seconds": 0.5}, "more than twice heartbeat"),
        ({"engine_max_bots": 0}, "engine_max_bots must be >= 1"),
        ({"lease_ttl_seconds": -1.0}, "lease_ttl_seconds must be a number >= 0"),
    ],
)
def test_lease_settings_that_cannot_work_are_refused_naming_them(
    changes: dict[str, float], message: str, database_url: str, strategies_dir: Path
) -> None:
    with pytest.raises(ValueError, match=message):
        config_for(database_url, strategies_dir, **changes)


def test_engines_list_on_sqlite_says_one_engine_owns_every_bot(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", database_url)
    result = CliRunner().invoke(app, ["engines", "list"])
    assert result.exit_code == 0, result.output
    assert "one engine owns every bot" in result.stdout


@pytest.mark.postgres
def test_a_journal_replayed_after_a_takeover_applies_no_write_of_the_lost_bot(
    postgres_url: str, strategies_dir: Path, tmp_path: Path
) -> None:
    """An engine's write journal (left by a database outage) is fenced at replay as its
    live writes are: the writes of a bot taken over meanwhile are kept aside, the writes of
    a bot it still holds are applied."""
    from live.engine.journal import WriteJournal, replay
    from live.engine.persistence import BotStatusWrite
    from live.engine.recorder import EngineDatabase, is_unavailable
    from tradepipe.enums import BotStatus

    add_bots(postgres_url, strategies_dir, [("kept", "always"), ("lost", "always")])
    kept, lost = (row.id for row in query(postgres_url, "SELECT id FROM bots ORDER BY id"))
    assert _claim(postgres_url, "a", [kept, lost]) == {kept: 1, lost: 1}
    journal = WriteJournal(tmp_path / "engine-a.journal.jsonl")
    journal.append(
        [
            (1, BotStatusWrite(kept, BotStatus.ERROR, "written by a", epoch=1)),
            (2, BotStatusWrite(lost, BotStatus.ERROR, "written by a", epoch=1)),
        ]
    )
    execute(postgres_url, f"UPDATE bot_leases SET expires_at = now() WHERE bot_id = {lost}")
    assert _claim(postgres_url, "b", [lost]) == {lost: 2}  # b took `lost` over: epoch 2

    database = EngineDatabase(postgres_url, busy_timeout_ms=1_000)
    try:
        report = replay(journal, database.session, is_unavailable=is_unavailable, owner="a")
    finally:
        database.dispose()
    assert (report.applied, report.rejected) == (1, 1)
    errors = {
        r.name: r.last_error for r in query(postgres_url, "SELECT name, last_error FROM bots")
    }
    assert errors == {"kept": "written by a", "lost": None}
    (kept_aside,) = [json.loads(line) for line in journal.rejected_path.read_text().splitlines()]
    assert kept_aside["write"]["bot_id"] == lost and kept_aside["write"]["epoch"] == 1
