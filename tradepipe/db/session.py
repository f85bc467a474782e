"""Engines and sessions for the trading database, SQLite or PostgreSQL from one URL.

Everything that opens the database goes through `create_engine_for`, so SQLite always runs
with foreign keys enforced and WAL journaling (the dashboard reads while the engine writes),
and an unreachable server is always reported the same way: `DatabaseUnavailableError`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import URL, Engine, ExceptionContext, make_url
from sqlalchemy.orm import Session

__all__ = [
    "DatabaseError",
    "DatabaseUnavailableError",
    "DatabaseUrlError",
    "create_engine_for",
    "mask_url",
    "normalise_url",
    "session_scope",
]

SQLITE_BUSY_TIMEOUT_MS = 10_000
PG_CONNECT_TIMEOUT_SECONDS = 10
_POSTGRES_ALIASES = frozenset({"postgres", "postgresql", "postgresql+psycopg"})


class DatabaseError(Exception):
    """Base of the database package's own errors; messages are one line, for humans."""


class DatabaseUrlError(DatabaseError, ValueError):
    """A database URL this project cannot use."""


class DatabaseUnavailableError(DatabaseError):
    """The database could not be reached or opened; the message names the URL, masked."""


def normalise_url(url: str | URL) -> URL:
    """Parse `url`, mapping plain `postgresql://` (and `postgres://`) to the psycopg 3 driver,
    the only PostgreSQL driver installed; refuse anything but SQLite and PostgreSQL."""
    try:
        parsed = make_url(url)
    except exc.ArgumentError:
        raise DatabaseUrlError(
            f"cannot parse database URL {_mask_text(str(url))!r}: "
            "use sqlite:///path/to/file.db or postgresql://user@host/dbname"
        ) from None
    if parsed.drivername in _POSTGRES_ALIASES:
        return parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername in {"sqlite", "sqlite+pysqlite"}:
        return parsed
    raise DatabaseUrlError(
        f"unsupported database URL {mask_url(parsed)!r}: "
        "use sqlite:///path/to/file.db or postgresql://user@host/dbname"
    )


def mask_url(url: str | URL) -> str:
    """The URL with its password replaced by ***, safe for logs and error messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except exc.ArgumentError:
        return _mask_text(str(url))


def _mask_text(text: str) -> str:
    # An unparseable URL may still carry user:password@; hide everything before the @.
    scheme, sep, rest = text.partition("://")
    if sep and "@" in rest:
        return f"{scheme}://***@{rest.rpartition('@')[2]}"
    return text


def create_engine_for(url: str | URL, *, verify: bool = True, echo: bool = False) -> Engine:
    """An Engine for `url` (SQLite or PostgreSQL), configured the project's way.

    With `verify` (the default) one connection is opened straight away, so a wrong URL or a
    stopped server fails here, at startup, rather than at the first query.
    Raises DatabaseUrlError or DatabaseUnavailableError.
    """
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite_engine(parsed, echo=echo)
    else:
        connect_args: dict[str, Any] = {}
        if "connect_timeout" not in parsed.query:
            connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_SECONDS
        # pre_ping: engines live for days; a restarted server must not surface as an error.
        engine = sa.create_engine(parsed, echo=echo, pool_pre_ping=True, connect_args=connect_args)
    event.listen(engine, "handle_error", _unavailable_on_connect_failure)
    if verify:
        with engine.connect():
            pass
    return engine


def _sqlite_engine(url: URL, *, echo: bool) -> Engine:
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        parent = Path(database).expanduser().parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise DatabaseUnavailableError(
                f"database unavailable at {mask_url(url)}: cannot create directory "
                f"{parent} ({error.strerror or error})"
            ) from error
    engine = sa.create_engine(url, echo=echo)
    event.listen(engine, "connect", _configure_sqlite_connection)
    return engine


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    if not isinstance(dbapi_connection, sqlite3.Connection):  # pragma: no cover
        return
    cursor = dbapi_connection.cursor()
    try:
        # SQLite ignores foreign keys unless asked, per connection.
        cursor.execute("PRAGMA foreign_keys=ON")
        # WAL lets the dashboard read while the engine writes; no-op for :memory:.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()


def _unavailable_on_connect_failure(context: ExceptionContext) -> None:
    """Turn a failure to open a connection (not a failing statement) into one clear error."""
    if context.connection is not None or context.is_pre_ping:
        return
    if not isinstance(context.sqlalchemy_exception, exc.OperationalError):
        return
    url = context.engine.url if context.engine is not None else None
    where = mask_url(url) if url is not None else "the configured database"
    reason = _first_line(str(context.original_exception))
    if context.dialect.name == "sqlite":
        hint = "check the file path and its permissions"
    else:
        hint = "check that the server is running and that the URL is right"
    raise DatabaseUnavailableError(
        f"database unavailable at {where}: {reason} ({hint}; the URL comes from "
        "TRADEPIPE_DATABASE_URL or the config file)"
    ) from context.original_exception


def _first_line(message: str) -> str:
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return lines[0] if lines else "connection failed"


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits when the block ends and rolls back if it raises.

    `expire_on_commit=False` so objects read inside the block stay readable after it, which
    the query layer relies on when it copies rows into plain dataclasses.
    """
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
