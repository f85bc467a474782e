"""positions.exit_reason may be `operator`: one position closed by an operator.

The CHECK of the exit reasons is widened (SQLite rebuilds the table in batch mode); no
data changes. The kill switch's flatten keeps `manual`.

Revision ID: 0007_operator_exit
Revises: 0006_exits
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007_operator_exit"
down_revision: str | None = "0006_exits"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BEFORE = (
    "take_profit", "stop_loss", "timeout", "maker_timeout", "manual", "rejected", "error",
    "strategy", "trailing_stop",
)  # fmt: skip
_AFTER = (*_BEFORE, "operator")


def _exit_reasons(values: Sequence[str]) -> None:
    allowed = ", ".join(f"'{value}'" for value in values)
    with op.batch_alter_table("positions") as batch:
        batch.drop_constraint(op.f("ck_positions_exit_reason"), type_="check")
        batch.create_check_constraint(
            op.f("ck_positions_exit_reason"), f"exit_reason IN ({allowed})"
        )


def upgrade() -> None:
    _exit_reasons(_AFTER)


def downgrade() -> None:
    op.execute("UPDATE positions SET exit_reason = 'manual' WHERE exit_reason = 'operator'")
    _exit_reasons(_BEFORE)
