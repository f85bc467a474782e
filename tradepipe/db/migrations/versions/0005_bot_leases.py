"""bot_leases: which engine owns each bot, with a fencing epoch (several engines, PostgreSQL).

Existing tables are unchanged. A row per leased bot: the owner engine id, the epoch
(incremented at each takeover; every bot write of the engine carries it and is refused
when it no longer matches) and the expiry the owner pushes forward with its heartbeat.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "bot_leases",
        sa.Column("bot_id", ID, nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("acquired_at", UTC_DATETIME, nullable=False),
        sa.Column("renewed_at", UTC_DATETIME, nullable=False),
        sa.Column("expires_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("bot_id", name=op.f("pk_bot_leases")),
        sa.ForeignKeyConstraint(
            ["bot_id"], ["bots.id"], name=op.f("fk_bot_leases_bot_id_bots"), ondelete="CASCADE"
        ),
    )
    op.create_index(op.f("ix_bot_leases_expires_at"), "bot_leases", ["expires_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_bot_leases_expires_at"), table_name="bot_leases")
    op.drop_table("bot_leases")
