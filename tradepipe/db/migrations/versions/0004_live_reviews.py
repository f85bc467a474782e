"""live_reviews: each review of a live bot against a backtest of its recorded market.

Existing tables are unchanged. One row per review run (`tradepipe live review`, the
`live_review` DAG): the bot, the range of candles reviewed and the summary JSON.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DATETIME = sa.DateTime(timezone=True)
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "live_reviews",
        sa.Column("id", ID, nullable=False),
        sa.Column("bot_name", sa.String(length=128), nullable=False),
        sa.Column("range_start", UTC_DATETIME, nullable=False),
        sa.Column("range_end", UTC_DATETIME, nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_live_reviews")),
    )
    op.create_index(
        "ix_live_reviews_bot_name_created_at",
        "live_reviews",
        ["bot_name", "created_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_live_reviews_bot_name_created_at", table_name="live_reviews")
    op.drop_table("live_reviews")
