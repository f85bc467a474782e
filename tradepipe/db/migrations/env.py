"""Alembic environment for the trading database.

Normally driven by `tradepipe.db.migrate`, which hands over an open connection in
`config.attributes["connection"]`. Run by hand (`alembic -c tradepipe/db/migrations/alembic.ini
...`) it uses `sqlalchemy.url` from that file if set, else the project's configured URL.
"""

from __future__ import annotations

import zlib
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection

import tradepipe.db.models  # noqa: F401  (registers every table on Base.metadata)
from tradepipe.config import load_settings
from tradepipe.db.base import Base
from tradepipe.db.session import create_engine_for

# Several engines may start at once against one PostgreSQL; this transaction-scoped advisory
# lock makes them take turns, so each sees the others' finished upgrade and does nothing.
MIGRATION_LOCK_KEY = zlib.crc32(b"tradepipe.db.migrations")

config = context.config
target_metadata = Base.metadata

# Only the developer's `alembic` command configures logging; the application owns its own.
if config.config_file_name is not None and "connection" not in config.attributes:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _database_url() -> str:
    return config.get_main_option("sqlalchemy.url") or load_settings().resolved_database_url


def _run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
        return
    engine = create_engine_for(_database_url())
    try:
        with engine.connect() as own_connection:
            _run_on(own_connection)
            own_connection.commit()
    finally:
        engine.dispose()


def run_migrations_offline() -> None:
    """Emit SQL to stdout (`alembic upgrade head --sql`) for a DBA to review."""
    context.configure(
        url=_database_url(),
        target_metadata=target_metadata,
        render_as_batch=True,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
