"""The Bots page's Leases section: on PostgreSQL every bot's owner engine, fencing epoch and
lease ages, read through the query layer (`bot_leases`); on SQLite one line saying one
engine owns every bot."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tests.dashboard.apptest import new_app, open_page, page_text, served_on
from tests.dashboard.conftest import Dashboard
from tradepipe.db import create_engine_for, session_scope
from tradepipe.db.dashboard_queries import bot_leases


@pytest.fixture
def loopback() -> Iterator[None]:
    with served_on("127.0.0.1"):
        yield


# alpha held by engine-1 for 5 minutes, beta taken over twice (epoch 3) by engine-2, gamma's
# lease lapsed (its engine gone, nobody has taken it yet)
LEASES = """
INSERT INTO bot_leases (bot_id, owner, epoch, acquired_at, renewed_at, expires_at)
SELECT id, owner, epoch, now() - acquired, now() - renewed, now() + expires
FROM bots JOIN (VALUES
    ('alpha', 'engine-1', 1, interval '5 minutes', interval '1 second', interval '29 seconds'),
    ('beta', 'engine-2', 3, interval '40 seconds', interval '2 seconds', interval '28 seconds'),
    ('gamma', 'engine-3', 2, interval '2 hours', interval '90 seconds', interval '-60 seconds')
) AS lease (bot, owner, epoch, acquired, renewed, expires) ON bots.name = lease.bot
"""


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_bots_page_shows_owners_epochs_and_lease_ages(dashboard: Dashboard, loopback: None) -> None:
    engine = create_engine_for(dashboard.database_url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(LEASES))
        with session_scope(engine) as session:
            overview = bot_leases(session)
    finally:
        engine.dispose()
    assert overview.shared
    assert [(lease.bot, lease.owner, lease.epoch) for lease in overview.leases] == [
        ("alpha", "engine-1", 1),
        ("beta", "engine-2", 3),
        ("gamma", "engine-3", 2),
    ]
    assert overview.live_by_owner() == {"engine-1": 1, "engine-2": 1}  # gamma's lapsed

    at = open_page(new_app(), "bots")
    assert not at.exception
    *_, leases = (frame.value for frame in at.dataframe)
    rows = leases.set_index("bot")
    assert (rows.loc["beta", "engine"], rows.loc["beta", "epoch"]) == ("engine-2", 3)
    assert rows.loc["alpha", "held for"].startswith("5 min")
    assert rows.loc["gamma", "held for"].startswith("2 h")
    assert rows.loc["gamma", "renewed"].startswith("1 min")
    assert rows.loc["alpha", "lease"].startswith("expires in")
    assert rows.loc["gamma", "lease"] == "expired"
    assert "Live leases by engine: **engine-1** 1, **engine-2** 1" in page_text(at)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_bots_page_on_sqlite_says_one_engine_owns_every_bot(
    dashboard: Dashboard, loopback: None
) -> None:
    at = open_page(new_app(), "bots")
    assert not at.exception
    assert "SQLite database: one engine owns every bot (no leases)." in page_text(at)
