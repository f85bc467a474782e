"""The database backends of the database and dashboard tests: every schema-touching test
runs on SQLite and PostgreSQL.

PostgreSQL comes from TRADEPIPE_TEST_PG_URL (default: the local server, trust auth). One
database, `tradepipe_test_<random>`, is created per test session and dropped at the end;
inside it every test gets its own schema (via search_path), so tests stay independent
without paying for a CREATE DATABASE each. An unreachable server skips the PostgreSQL tests
with the reason; CI turns those skips into failures.

A plugin of the top conftest, not a folder's conftest: fixtures a second folder imported
from a conftest would be defined twice, and a full run would create the session's
database twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine
from sqlalchemy.orm import Session

from tests.support import fresh_pg_database
from tradepipe.db import create_engine_for, upgrade_database

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@pytest.fixture(scope="session")
def pg_session_database() -> Iterator[URL]:
    """A fresh PostgreSQL database for this test session; skips if the server is down."""
    with fresh_pg_database("tradepipe_test") as url:
        yield url


def _fresh_pg_schema(database_url: URL) -> URL:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    finally:
        engine.dispose()
    # Everything unqualified, alembic_version included, lands in this schema.
    return database_url.update_query_dict({"options": f"-csearch_path={schema}"})


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of an empty database (never migrated) on the parametrised backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state' / 'tradepipe.db'}"
    database: URL = request.getfixturevalue("pg_session_database")
    return _fresh_pg_schema(database).render_as_string(hide_password=False)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on a database migrated to head."""
    upgrade_database(database_url)
    engine = create_engine_for(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A plain session, rolled back at the end: tests that expect a failed flush leave it
    unusable, which session_scope would then try to commit."""
    with Session(engine, expire_on_commit=False) as session:
        yield session
