"""Engines, sessions and the errors a user sees when the database is wrong or down."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tradepipe.db import (
    DatabaseUnavailableError,
    DatabaseUrlError,
    Event,
    create_engine_for,
    mask_url,
    normalise_url,
    session_scope,
    upgrade_database,
)


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    "url",
    ["postgresql://u@h/db", "postgres://u@h/db", "postgresql+psycopg://u@h/db"],
)
def test_postgres_urls_use_psycopg(url: str) -> None:
    assert normalise_url(url).drivername == "postgresql+psycopg"


@pytest.mark.parametrize("url", ["mysql://u:pw@h/db", "not a url", "postgresql+psycopg2://h/db"])
def test_unsupported_urls_are_refused(url: str) -> None:
    with pytest.raises(DatabaseUrlError, match="use sqlite:///") as raised:
        create_engine_for(url)
    assert "pw" not in str(raised.value)


def test_mask_url_hides_the_password() -> None:
    masked = mask_url("postgresql+psycopg://trader:s3cret@db.example:5432/trading")
    assert masked == "postgresql+psycopg://trader:***@db.example:5432/trading"


def test_unreachable_server_raises_one_clear_line() -> None:
    url = f"postgresql://trader:s3cret@127.0.0.1:{_closed_port()}/trading"
    with pytest.raises(DatabaseUnavailableError) as raised:
        create_engine_for(url)
    message = str(raised.value)
    assert "\n" not in message
    assert "s3cret" not in message
    assert message.startswith("database unavailable at postgresql+psycopg://trader:***@127.0.0.1")


def test_unreachable_server_is_reported_on_first_use_too() -> None:
    engine = create_engine_for(f"postgresql://127.0.0.1:{_closed_port()}/x", verify=False)
    with pytest.raises(DatabaseUnavailableError), session_scope(engine) as session:
        session.execute(sa.text("SELECT 1"))


def test_upgrade_of_unreachable_server_raises_unavailable() -> None:
    with pytest.raises(DatabaseUnavailableError):
        upgrade_database(f"postgresql://127.0.0.1:{_closed_port()}/x")


def test_sqlite_file_that_cannot_be_opened(tmp_path: Path) -> None:
    directory = tmp_path / "a_directory.db"
    directory.mkdir()
    with pytest.raises(DatabaseUnavailableError, match="check the file path"):
        create_engine_for(f"sqlite:///{directory}")


def test_sqlite_directory_that_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(DatabaseUnavailableError, match="cannot create directory"):
        create_engine_for(f"sqlite:///{tmp_path / 'file' / 'sub' / 'x.db'}")


def test_sqlite_is_configured_for_concurrent_safe_use(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "deeper" / "tradepipe.db"
    engine = create_engine_for(f"sqlite:///{path}")
    try:
        assert path.parent.is_dir()
        with engine.connect() as connection:

            def pragma(name: str) -> object:
                return connection.exec_driver_sql(f"PRAGMA {name}").scalar()

            assert pragma("foreign_keys") == 1
            assert pragma("journal_mode") == "wal"
            assert pragma("busy_timeout") == 10_000
    finally:
        engine.dispose()


def _event_count(engine: Engine) -> int:
    with session_scope(engine) as session:
        return session.scalar(sa.select(sa.func.count()).select_from(Event)) or 0


def test_session_scope_commits(engine: Engine) -> None:
    with session_scope(engine) as session:
        session.add(Event(kind="k", payload={}))
    assert _event_count(engine) == 1


def test_session_scope_rolls_back_on_error(engine: Engine) -> None:
    with pytest.raises(RuntimeError, match="boom"), session_scope(engine) as session:
        session.add(Event(kind="k", payload={}))
        session.flush()
        raise RuntimeError("boom")
    assert _event_count(engine) == 0
