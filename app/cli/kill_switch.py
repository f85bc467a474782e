"""`tradepipe live kill-switch engage|release|status`: the kill switch of every engine on the
trading database (tradepipe/controls.py); engines apply it at their next poll."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.common import console, database_session, fail
from app.cli.models import operator_name

kill_switch_app = typer.Typer(
    help="The kill switch: no new entry on any engine, pending entries cancelled.",
    no_args_is_help=True,
)
Reason = Annotated[str, typer.Option(help="why: recorded with the switch (required)")]


def _set(engaged: bool, reason: str, flatten: bool = False) -> None:
    from tradepipe.controls import set_kill_switch

    try:
        with database_session() as session:
            set_kill_switch(
                session, engaged=engaged, reason=reason, by=operator_name(), flatten=flatten
            )
    except ValueError as error:
        fail(str(error))
    state = "engaged" if engaged else "released"
    console.print(f"kill switch {state}; running engines apply it at their next poll")


@kill_switch_app.command("engage")
def engage(
    reason: Reason,
    flatten: Annotated[bool, typer.Option(help="also leave every open position at market")] = False,
) -> None:
    """Stop every new entry and cancel pending ones; open positions keep their exits, or
    with --flatten are left at market too."""
    _set(True, reason, flatten)


@kill_switch_app.command("release")
def release(reason: Reason) -> None:
    """Let bots enter again."""
    _set(False, reason)


@kill_switch_app.command("status")
def status() -> None:
    from tradepipe.controls import kill_switch

    with database_session() as session:
        current = kill_switch(session)
    if not current.engaged:
        console.print("kill switch released")
        return
    when = current.at.isoformat(timespec="seconds") if current.at else "?"
    flat = " (flatten)" if current.flatten else ""
    console.print(f"kill switch ENGAGED{flat} by {current.by} at {when}: {current.reason}")
