"""A fresh PostgreSQL database for a benchmark on TRADEPIPE_TEST_PG_URL's server, migrated
and dropped afterwards; None (after printing why) when no server is reachable, since a
benchmark is not a test and measures nothing then."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tradepipe.db import upgrade_database

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@contextmanager
def fresh_database(label: str) -> Iterator[str | None]:
    admin_url = make_url(os.environ.get("TRADEPIPE_TEST_PG_URL", DEFAULT_PG_URL))
    admin = sa.create_engine(
        admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )
    try:
        with admin.connect():
            pass
    except sa.exc.OperationalError as error:
        print(f"{label}: no PostgreSQL server reachable ({error.orig}); nothing measured")
        admin.dispose()
        yield None
        return
    name = f"tradepipe_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    try:
        upgrade_database(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
