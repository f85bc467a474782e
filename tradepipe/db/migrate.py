"""Bring a trading database to the current schema, from code: no alembic.ini needed.

`upgrade_database` is what `tradepipe db upgrade` and the engine's startup call. It is
idempotent and safe to run from several processes at once: on PostgreSQL env.py takes an
advisory lock, on SQLite the upgrade holds the database's write lock.
"""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, Connection

from tradepipe.db.session import DatabaseError, create_engine_for, mask_url

__all__ = [
    "MIGRATIONS_DIR",
    "MigrationError",
    "SchemaNotCurrentError",
    "alembic_config",
    "current_revision",
    "head_revision",
    "require_current_schema",
    "upgrade_database",
]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Alembic's `context` and `op` are module-level proxies: two threads of one process cannot
# run migrations at once. Other processes are kept in turn by the database locks.
_ALEMBIC_LOCK = threading.Lock()


class MigrationError(DatabaseError):
    """A migration left the database inconsistent."""


class SchemaNotCurrentError(DatabaseError):
    """The database is not at the head revision this code expects."""


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic Config pointing at the packaged migrations, optionally bound to a
    connection (passed through `attributes`, so URLs with `%` need no escaping)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision shipped with this code."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships revisions
        raise MigrationError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def upgrade_database(url: str | URL) -> str:
    """Upgrade the database at `url` to head and return the revision it is now at.

    Raises DatabaseUnavailableError if it cannot be reached, MigrationError if a SQLite
    migration broke a foreign key.
    """
    with _ALEMBIC_LOCK:
        return _upgrade(url)


def _upgrade(url: str | URL) -> str:
    engine = create_engine_for(url)
    try:
        with engine.connect() as connection:
            sqlite = connection.dialect.name == "sqlite"
            if sqlite:
                # Batch migrations rebuild tables (copy, drop, rename); with foreign keys on,
                # dropping a parent table would cascade into or reject its children. The
                # pragma is ignored inside a transaction, hence the commit before Alembic.
                connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
                connection.commit()
                # Take the write lock first: a second process upgrading at the same time waits
                # (busy timeout), then finds the schema at head; and a failed migration rolls
                # back whole instead of leaving half its DDL behind.
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            command.upgrade(alembic_config(connection), "head")
            connection.commit()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                if broken:
                    raise MigrationError(
                        f"migrating {mask_url(url)} left {len(broken)} rows with broken "
                        f"foreign keys, first in table {broken[0][0]!r}: restore a backup"
                    )
            revision = _revision_on(connection)
    finally:
        # The connection ran with foreign keys off; never hand it back to a pool.
        engine.dispose()
    if revision is None:  # pragma: no cover - Alembic always stamps after an upgrade
        raise MigrationError(f"upgrade of {mask_url(url)} did not record a revision")
    return revision


def current_revision(url: str | URL) -> str | None:
    """The revision the database at `url` is at; None if it has never been migrated."""
    engine = create_engine_for(url)
    try:
        with engine.connect() as connection:
            return _revision_on(connection)
    finally:
        engine.dispose()


def require_current_schema(url: str | URL) -> str:
    """Refuse to run against a database that is behind (or ahead of) this code, with a
    message that says what to do; return the revision when it matches."""
    current = current_revision(url)
    head = head_revision()
    if current != head:
        found = current or "no schema"
        raise SchemaNotCurrentError(
            f"database {mask_url(url)} is at {found}, this code needs {head}: "
            "run `tradepipe db upgrade`"
        )
    return head


def _revision_on(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()
