"""shadow_runs, shadow_positions: what a challenger model traded in shadow, never at a venue.

Existing tables are unchanged. One `shadow_runs` row per (bot, model, challenger version,
start: an engine restart starts a new run) with its strategy hash and decision counters;
its `shadow_positions`, upserted by (run, sequence), with prices, fees and PnL as in
`positions`.

Revision ID: 0008_shadow
Revises: 0007_operator_exit
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_shadow"
down_revision: str | None = "0007_operator_exit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "shadow_runs",
        sa.Column("id", ID, nullable=False),
        sa.Column("bot_name", sa.String(length=128), nullable=False),
        sa.Column("model_name", sa.String(length=256), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("strategy_hash", sa.String(length=64), nullable=False),
        sa.Column("started_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.Column("decisions", sa.Integer(), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shadow_runs")),
        sa.UniqueConstraint(
            "bot_name",
            "model_name",
            "model_version",
            "started_at",
            name=op.f("uq_shadow_runs_bot_name_model_name_model_version_started_at"),
        ),
    )
    op.create_index(
        "ix_shadow_runs_model_name_model_version",
        "shadow_runs",
        ["model_name", "model_version"],
        unique=False,
    )
    op.create_table(
        "shadow_positions",
        sa.Column("id", ID, nullable=False),
        sa.Column("run_id", ID, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("entry_price", sa.Float(), nullable=True),
        sa.Column("exit_price", sa.Float(), nullable=True),
        sa.Column("placed_at", UTC_DATETIME, nullable=False),
        sa.Column("opened_at", UTC_DATETIME, nullable=True),
        sa.Column("closed_at", UTC_DATETIME, nullable=True),
        sa.Column("exit_reason", sa.String(length=32), nullable=True),
        sa.Column("fees", sa.Float(), nullable=False),
        sa.Column("realised_pnl", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shadow_positions")),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["shadow_runs.id"],
            name=op.f("fk_shadow_positions_run_id_shadow_runs"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("run_id", "seq", name=op.f("uq_shadow_positions_run_id_seq")),
    )


def downgrade() -> None:
    op.drop_table("shadow_positions")
    op.drop_index("ix_shadow_runs_model_name_model_version", table_name="shadow_runs")
    op.drop_table("shadow_runs")
