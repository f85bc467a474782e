"""strategy_sources: the source of every strategy version the engine loaded, by content hash.

Existing tables are unchanged. Rows are written once per version and never updated, so a
review can re-run any strategy version named by an order, a position or the decision log.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "strategy_sources",
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("source", sa.LargeBinary(), nullable=False),
        sa.Column("first_seen_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("content_hash", name=op.f("pk_strategy_sources")),
    )


def downgrade() -> None:
    op.drop_table("strategy_sources")
