"""Initial schema: strategies, bots, positions, orders, fills, daily stats, heartbeats,
model promotions and events.

Written from `alembic revision --autogenerate` and tidied so it depends on nothing in the
application: enum columns are VARCHAR(32) with explicit CHECK constraints, and every
constraint and index is named exactly as `tradepipe.db.base.NAMING_CONVENTION` names it.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# BIGINT on PostgreSQL, INTEGER on SQLite (only INTEGER PRIMARY KEY auto-increments there).
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ENUM = sa.String(length=32)
UTC_DATETIME = sa.DateTime(timezone=True)


def _one_of(table: str, column: str, *values: str) -> sa.CheckConstraint:
    allowed = ", ".join(f"'{value}'" for value in values)
    return sa.CheckConstraint(f"{column} IN ({allowed})", name=op.f(f"ck_{table}_{column}"))


def _audit_times() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "strategies",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("file_path", sa.String(length=1024), nullable=False),
        sa.Column("class_name", sa.String(length=128), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("status", ENUM, nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_line", sa.Integer(), nullable=True),
        sa.Column("version_count", sa.Integer(), nullable=False),
        *_audit_times(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_strategies")),
        sa.UniqueConstraint("name", name=op.f("uq_strategies_name")),
        _one_of("strategies", "status", "valid", "invalid", "removed"),
        sa.CheckConstraint(
            "version_count >= 0", name=op.f("ck_strategies_version_count_not_negative")
        ),
    )

    op.create_table(
        "bots",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("strategy_name", sa.String(length=128), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("exchange", sa.String(length=32), nullable=False),
        sa.Column("timeframe", sa.String(length=8), nullable=False),
        sa.Column("mode", ENUM, nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        # The CHECK (enabled IN (0, 1)) exists on SQLite only; PostgreSQL has a real boolean.
        sa.Column("enabled", sa.Boolean(create_constraint=True, name="enabled"), nullable=False),
        sa.Column("status", ENUM, nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        *_audit_times(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bots")),
        sa.UniqueConstraint("name", name=op.f("uq_bots_name")),
        _one_of("bots", "mode", "paper", "testnet", "live"),
        _one_of("bots", "status", "stopped", "running", "error", "stale"),
    )
    op.create_index(op.f("ix_bots_strategy_name"), "bots", ["strategy_name"])

    op.create_table(
        "positions",
        sa.Column("id", ID, nullable=False),
        sa.Column("bot_id", ID, nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("side", ENUM, nullable=False),
        sa.Column("status", ENUM, nullable=False),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("entry_price", sa.Float(), nullable=True),
        sa.Column("exit_price", sa.Float(), nullable=True),
        sa.Column("take_profit_price", sa.Float(), nullable=True),
        sa.Column("stop_loss_price", sa.Float(), nullable=True),
        sa.Column("opened_at", UTC_DATETIME, nullable=True),
        sa.Column("closed_at", UTC_DATETIME, nullable=True),
        sa.Column("expires_at", UTC_DATETIME, nullable=True),
        sa.Column("exit_reason", ENUM, nullable=True),
        sa.Column("fees", sa.Float(), nullable=False),
        sa.Column("realised_pnl", sa.Float(), nullable=False),
        sa.Column("strategy_hash", sa.String(length=64), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=True),
        *_audit_times(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_positions")),
        sa.ForeignKeyConstraint(["bot_id"], ["bots.id"], name=op.f("fk_positions_bot_id_bots")),
        _one_of("positions", "side", "buy", "sell"),
        _one_of("positions", "status", "pending", "active", "closed"),
        _one_of(
            "positions",
            "exit_reason",
            "take_profit",
            "stop_loss",
            "timeout",
            "maker_timeout",
            "manual",
            "rejected",
            "error",
        ),
        sa.CheckConstraint("quantity >= 0", name=op.f("ck_positions_quantity_not_negative")),
        sa.CheckConstraint("fees >= 0", name=op.f("ck_positions_fees_not_negative")),
        sa.CheckConstraint(
            "status != 'closed' OR exit_reason IS NOT NULL",
            name=op.f("ck_positions_closed_has_exit_reason"),
        ),
    )
    op.create_index(op.f("ix_positions_bot_id_status"), "positions", ["bot_id", "status"])
    op.create_index(op.f("ix_positions_status"), "positions", ["status"])
    op.create_index(op.f("ix_positions_closed_at"), "positions", ["closed_at"])

    op.create_table(
        "orders",
        sa.Column("id", ID, nullable=False),
        sa.Column("client_order_id", sa.String(length=64), nullable=False),
        sa.Column("exchange_order_id", sa.String(length=64), nullable=True),
        sa.Column("bot_id", ID, nullable=False),
        sa.Column("position_id", ID, nullable=True),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("side", ENUM, nullable=False),
        sa.Column("order_type", ENUM, nullable=False),
        sa.Column("price", sa.Float(), nullable=True),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("filled_quantity", sa.Float(), nullable=False),
        sa.Column("status", ENUM, nullable=False),
        sa.Column("role", ENUM, nullable=False),
        sa.Column("strategy_hash", sa.String(length=64), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        *_audit_times(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("client_order_id", name=op.f("uq_orders_client_order_id")),
        sa.ForeignKeyConstraint(["bot_id"], ["bots.id"], name=op.f("fk_orders_bot_id_bots")),
        sa.ForeignKeyConstraint(
            ["position_id"], ["positions.id"], name=op.f("fk_orders_position_id_positions")
        ),
        _one_of("orders", "side", "buy", "sell"),
        _one_of("orders", "order_type", "market", "limit"),
        _one_of(
            "orders",
            "status",
            "new",
            "open",
            "partially_filled",
            "filled",
            "cancelled",
            "rejected",
            "expired",
        ),
        _one_of(
            "orders", "role", "entry", "take_profit", "stop_loss", "timeout_exit", "market_exit"
        ),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_orders_quantity_positive")),
        sa.CheckConstraint(
            "filled_quantity >= 0", name=op.f("ck_orders_filled_quantity_not_negative")
        ),
        sa.CheckConstraint("price IS NULL OR price > 0", name=op.f("ck_orders_price_positive")),
        sa.CheckConstraint(
            "order_type != 'limit' OR price IS NOT NULL",
            name=op.f("ck_orders_limit_order_has_price"),
        ),
    )
    op.create_index(op.f("ix_orders_bot_id_status"), "orders", ["bot_id", "status"])
    op.create_index(op.f("ix_orders_bot_id_created_at"), "orders", ["bot_id", "created_at"])
    op.create_index(op.f("ix_orders_status"), "orders", ["status"])
    op.create_index(op.f("ix_orders_created_at"), "orders", ["created_at"])
    op.create_index(op.f("ix_orders_position_id"), "orders", ["position_id"])

    op.create_table(
        "fills",
        sa.Column("id", ID, nullable=False),
        sa.Column("order_id", ID, nullable=False),
        sa.Column("exchange_fill_id", sa.String(length=64), nullable=False),
        sa.Column("price", sa.Float(), nullable=False),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("fee", sa.Float(), nullable=False),
        sa.Column("fee_asset", sa.String(length=16), nullable=True),
        sa.Column("filled_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fills")),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_fills_order_id_orders")),
        sa.UniqueConstraint(
            "order_id", "exchange_fill_id", name=op.f("uq_fills_order_id_exchange_fill_id")
        ),
        sa.CheckConstraint("price > 0", name=op.f("ck_fills_price_positive")),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_fills_quantity_positive")),
        sa.CheckConstraint("fee >= 0", name=op.f("ck_fills_fee_not_negative")),
    )

    op.create_table(
        "daily_bot_stats",
        sa.Column("bot_id", ID, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("trades", sa.Integer(), nullable=False),
        sa.Column("wins", sa.Integer(), nullable=False),
        sa.Column("losses", sa.Integer(), nullable=False),
        sa.Column("gross_pnl", sa.Float(), nullable=False),
        sa.Column("fees", sa.Float(), nullable=False),
        sa.Column("net_pnl", sa.Float(), nullable=False),
        sa.Column("volume", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("bot_id", "day", name=op.f("pk_daily_bot_stats")),
        sa.ForeignKeyConstraint(
            ["bot_id"], ["bots.id"], name=op.f("fk_daily_bot_stats_bot_id_bots")
        ),
    )

    op.create_table(
        "heartbeats",
        sa.Column("kind", ENUM, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("engine_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=True),
        sa.Column("started_at", UTC_DATETIME, nullable=False),
        sa.Column("beat_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("kind", "name", name=op.f("pk_heartbeats")),
        _one_of("heartbeats", "kind", "engine", "bot"),
    )

    op.create_table(
        "model_promotions",
        sa.Column("id", ID, nullable=False),
        sa.Column("model_name", sa.String(length=256), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("alias", sa.String(length=64), nullable=False),
        sa.Column("decision", ENUM, nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("data_fingerprint", sa.String(length=128), nullable=True),
        sa.Column("feature_spec_hash", sa.String(length=64), nullable=True),
        sa.Column("strategy_hash", sa.String(length=64), nullable=True),
        sa.Column("decided_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_promotions")),
        _one_of("model_promotions", "decision", "promoted", "refused"),
    )
    op.create_index(
        op.f("ix_model_promotions_model_name_decided_at"),
        "model_promotions",
        ["model_name", "decided_at"],
    )

    op.create_table(
        "events",
        sa.Column("id", ID, nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("bot_name", sa.String(length=128), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index(op.f("ix_events_created_at"), "events", ["created_at"])
    op.create_index(op.f("ix_events_kind_created_at"), "events", ["kind", "created_at"])


def downgrade() -> None:
    # Children before parents; dropping a table drops its indexes.
    for table in (
        "events",
        "model_promotions",
        "heartbeats",
        "daily_bot_stats",
        "fills",
        "orders",
        "positions",
        "bots",
        "strategies",
    ):
        op.drop_table(table)
