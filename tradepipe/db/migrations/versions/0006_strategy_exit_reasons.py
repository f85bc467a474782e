"""strategy_exit_reasons: positions may close as `strategy` (the strategy's Exit) or
`trailing_stop`.

Only the CHECK constraint on positions.exit_reason widens; no data changes. Batch mode
rebuilds the table on SQLite, which cannot alter a constraint in place.

Revision ID: 0006_exits
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_exits"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BEFORE = ("take_profit", "stop_loss", "timeout", "maker_timeout", "manual", "rejected", "error")
_AFTER = (*_BEFORE, "strategy", "trailing_stop")


def _set_reasons(reasons: tuple[str, ...]) -> None:
    allowed = ", ".join(f"'{value}'" for value in reasons)
    with op.batch_alter_table("positions") as batch:
        batch.drop_constraint(op.f("ck_positions_exit_reason"), type_="check")
        batch.create_check_constraint(
            op.f("ck_positions_exit_reason"), sa.text(f"exit_reason IN ({allowed})")
        )


def upgrade() -> None:
    _set_reasons(_AFTER)


def downgrade() -> None:
    op.execute(
        "UPDATE positions SET exit_reason = 'manual' "
        "WHERE exit_reason IN ('strategy', 'trailing_stop')"
    )
    _set_reasons(_BEFORE)
