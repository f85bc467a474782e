"""The migrations are the schema: on both backends they must build exactly the models."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command, op
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine

from tradepipe.db import (
    Base,
    SchemaNotCurrentError,
    create_engine_for,
    current_revision,
    head_revision,
    require_current_schema,
    upgrade_database,
)
from tradepipe.db.migrate import alembic_config


def _schema_snapshot(engine: Engine) -> dict[str, Any]:
    inspector = sa.inspect(engine)
    return {
        table: (
            sorted(column["name"] for column in inspector.get_columns(table)),
            sorted(str(index["name"]) for index in inspector.get_indexes(table)),
        )
        for table in inspector.get_table_names()
    }


def test_fresh_database_has_no_revision(database_url: str) -> None:
    assert current_revision(database_url) is None


def test_upgrade_builds_exactly_the_models(database_url: str) -> None:
    assert upgrade_database(database_url) == head_revision()

    engine = create_engine_for(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
        tables = set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert tables == set(Base.metadata.tables) | {"alembic_version"}
    assert current_revision(database_url) == head_revision()


def test_upgrade_twice_is_a_no_op(database_url: str) -> None:
    first = upgrade_database(database_url)
    engine = create_engine_for(database_url)
    try:
        before = _schema_snapshot(engine)
        assert upgrade_database(database_url) == first
        assert _schema_snapshot(engine) == before
        with engine.connect() as connection:
            versions = connection.execute(sa.text("SELECT version_num FROM alembic_version"))
            assert versions.scalars().all() == [first]
    finally:
        engine.dispose()


def test_constraints_are_named_by_the_convention(engine: Engine) -> None:
    checks = {check["name"] for check in sa.inspect(engine).get_check_constraints("orders")}
    assert {"ck_orders_status", "ck_orders_role", "ck_orders_quantity_positive"} <= checks


def test_enum_columns_refuse_unknown_values(engine: Engine) -> None:
    # The CHECK constraints exist in the migrated schema, not only in the models.
    with pytest.raises(sa.exc.IntegrityError, match="ck_bots_mode"), engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO bots (name, strategy_name, symbol, exchange, timeframe, mode,"
                " config, enabled, status, created_at, updated_at) VALUES ('x', 's', 'BTCUSDT',"
                " 'binance', '1m', 'moon', '{}', true, 'stopped', :now, :now)"
            ),
            {"now": "2024-01-01 00:00:00"},
        )


def test_downgrade_to_base_removes_every_table(database_url: str) -> None:
    upgrade_database(database_url)
    engine = create_engine_for(database_url)
    try:
        with engine.connect() as connection:
            command.downgrade(alembic_config(connection), "base")
            connection.commit()
        assert set(sa.inspect(engine).get_table_names()) == {"alembic_version"}
    finally:
        engine.dispose()
    assert current_revision(database_url) is None


def test_require_current_schema_says_what_to_do(database_url: str) -> None:
    with pytest.raises(SchemaNotCurrentError, match="run `tradepipe db upgrade`"):
        require_current_schema(database_url)
    upgrade_database(database_url)
    assert require_current_schema(database_url) == head_revision()


def test_concurrent_upgrades_take_turns(database_url: str) -> None:
    # Several engines may start together; each must end at head without tripping on another.
    # Processes, not threads: the database's own lock is what is under test.
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=3, mp_context=spawn) as pool:
        revisions = list(pool.map(upgrade_database, [database_url] * 3))
    assert revisions == [head_revision()] * 3


def test_threads_of_one_process_take_turns(database_url: str) -> None:
    with ThreadPoolExecutor(max_workers=3) as pool:
        revisions = list(pool.map(upgrade_database, [database_url] * 3))
    assert revisions == [head_revision()] * 3


def test_failed_sqlite_migration_leaves_no_partial_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    real_create_table = op.create_table
    created: list[str] = []

    def create_then_fail(name: str, *args: Any, **kwargs: Any) -> Any:
        if created:
            raise RuntimeError("simulated failure in the middle of a migration")
        created.append(name)
        return real_create_table(name, *args, **kwargs)

    monkeypatch.setattr(op, "create_table", create_then_fail)
    with pytest.raises(RuntimeError, match="simulated failure"):
        upgrade_database(url)
    engine = create_engine_for(url)
    try:
        assert sa.inspect(engine).get_table_names() == []
    finally:
        engine.dispose()
