"""`tradepipe engines list`: which engine owns which bot, under which epoch, for how long."""

from __future__ import annotations

import typer
from rich.table import Table

from app.cli.common import console, database_session

engines_app = typer.Typer(help="Live engines sharing the bots.", no_args_is_help=True)


@engines_app.command("list")
def engines_list() -> None:
    """Every bot lease: owner engine, epoch (fencing token), held for, renewed, expiry."""
    from tradepipe.db.leases import list_leases

    with database_session() as session:
        if session.get_bind().dialect.name != "postgresql":
            console.print("SQLite database: one engine owns every bot (no leases)")
            return
        leases = list_leases(session)
    if not leases:
        console.print("no leases: no engine has run on this database yet")
        return
    table = Table("engine", "bot", "epoch", "held for", "renewed", "state")
    for lease in leases:
        state = "expired" if lease.expired else f"expires in {_seconds(lease.expires_in_seconds)}"
        table.add_row(
            lease.owner, lease.bot, str(lease.epoch), _seconds(lease.held_seconds),
            f"{_seconds(lease.renewed_seconds_ago)} ago", state,
        )  # fmt: skip
    console.print(table)
    owners = sorted({lease.owner for lease in leases if not lease.expired})
    console.print(f"{len(owners)} engines holding live leases: {', '.join(owners) or 'none'}")


def _seconds(value: float) -> str:
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"
