"""Fixtures of the engine tests (helpers in tests/engine/helpers.py): a migrated SQLite
database per test, a strategies folder, the bounded asyncio runner."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tests.engine.helpers import Aio, write_strategies
from tests.engine.model_store import ModelStore
from tradepipe.db import mask_url, upgrade_database

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture
def aio() -> Aio:
    return Aio()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'trading.db'}"
    upgrade_database(url)
    return url


@pytest.fixture
def strategies_dir(tmp_path: Path) -> Path:
    return write_strategies(tmp_path / "strategies")


@pytest.fixture(scope="session")
def model_store(tmp_path_factory: pytest.TempPathFactory) -> ModelStore:
    """One real MLflow store per session (creating one costs seconds); tests name their
    models apart."""
    return ModelStore.under(tmp_path_factory.mktemp("mlflow_store"))


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database (TRADEPIPE_TEST_PG_URL's server), migrated, dropped at
    the end; skips when the server is not reachable (CI makes that a failure)."""
    admin_url = make_url(os.environ.get("TRADEPIPE_TEST_PG_URL", DEFAULT_PG_URL))
    if admin_url.drivername in {"postgres", "postgresql"}:
        admin_url = admin_url.set(drivername="postgresql+psycopg")
    admin = sa.create_engine(
        admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )
    try:
        with admin.connect():
            pass
    except sa.exc.OperationalError as error:
        admin.dispose()
        pytest.skip(f"PostgreSQL not reachable at {mask_url(admin_url)}: {error.orig}")
    name = f"tradepipe_engine_{uuid.uuid4().hex[:12]}"
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
