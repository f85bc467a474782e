"""Live engine state: bot_states (serialized position book and strategy state per bot) and
engine_controls (named switches such as the kill switch).

Existing tables are unchanged. A market entry's base quantity is unknown until it fills, and
orders.quantity stays NOT NULL: the engine records its estimate (capital / price at the
decision) and replaces it with the filled quantity; the exact quote size lives in the
serialized book (bot_states.book).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "bot_states",
        sa.Column("bot_id", ID, nullable=False),
        sa.Column("book", sa.JSON(), nullable=False),
        sa.Column("strategy_state", sa.JSON(), nullable=False),
        sa.Column("strategy_name", sa.String(length=128), nullable=True),
        sa.Column("strategy_hash", sa.String(length=64), nullable=True),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("bot_id", name=op.f("pk_bot_states")),
        sa.ForeignKeyConstraint(
            ["bot_id"], ["bots.id"], name=op.f("fk_bot_states_bot_id_bots"), ondelete="CASCADE"
        ),
    )
    op.create_table(
        "engine_controls",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=True),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_engine_controls")),
    )


def downgrade() -> None:
    op.drop_table("engine_controls")
    op.drop_table("bot_states")
