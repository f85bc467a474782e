"""`tradepipe positions list|close|move`: an operator's hand on open positions
(tradepipe/position_controls.py). Each request is written to the trading database with who
and when; the engine running the bot applies it at its next poll (`engine_bot_reload_seconds`)
and answers it with an event: `position_closed_by_operator`, `position_barriers_moved`
(with the old and new barriers) or `operator_request_refused` (with why)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from app.cli.common import console, database_session, user_errors
from app.cli.models import operator_name

positions_app = typer.Typer(
    help="Open positions: list them at the live price, close one, move its barriers.",
    no_args_is_help=True,
)
PositionId = Annotated[int, typer.Argument(help="the position's id (`tradepipe positions list`)")]


def _errors() -> tuple[type[BaseException], ...]:
    from tradepipe.bots import BotError
    from tradepipe.position_controls import PositionControlError

    return (PositionControlError, BotError)


@positions_app.command("list")
def positions_list(
    bot: Annotated[str | None, typer.Option(help="only this bot's")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
) -> None:
    """Every open position, marked at the live price its engine publishes (the last fill
    when no engine is beating, said in the note)."""
    from datetime import UTC, datetime

    from tradepipe.db.dashboard_queries import open_position_marks

    with database_session() as session:
        marks = open_position_marks(session, bot=bot)
    now = datetime.now(UTC)
    for mark in marks:
        p = mark.position
        age = None if mark.marked_at is None else round((now - mark.marked_at).total_seconds(), 1)
        row = {
            "id": p.id, "bot": p.bot_name, "symbol": p.symbol, "side": p.side.value,
            "status": p.status.value, "quantity": p.quantity, "entry_price": p.entry_price,
            "take_profit_price": p.take_profit_price, "stop_loss_price": p.stop_loss_price,
            "mark_price": mark.mark_price, "price_age_seconds": age,
            "price_source": mark.price_source, "unrealised_pnl": mark.unrealised_pnl,
            "note": mark.note,
        }  # fmt: skip
        if as_json:
            print(json.dumps(row, sort_keys=True))
            continue
        pnl = "?" if mark.unrealised_pnl is None else f"{mark.unrealised_pnl:+.4f}"
        at = "" if mark.mark_price is None else f" at {mark.mark_price:g} ({age} s old)"
        console.print(
            f"#{p.id} {p.bot_name} {p.symbol} {p.side.value} {p.status.value} "
            f"entry {p.entry_price} tp {p.take_profit_price} sl {p.stop_loss_price}: "
            f"unrealised {pnl}{at}" + (f" [{mark.note}]" if mark.note else ""),
            highlight=False,
            markup=False,
        )
    if not marks:
        console.print("no open positions")


@positions_app.command("close")
def positions_close(position_id: PositionId) -> None:
    """Leave the position at market (a pending entry is cancelled); exit reason operator."""
    from tradepipe.position_controls import request_close

    with user_errors(_errors()), database_session() as session:
        request = request_close(session, position_id, by=operator_name())
    console.print(
        f"position {position_id} ({request.bot}) closes at market at the next poll of the "
        "engine running it",
        highlight=False,
    )


@positions_app.command("move")
def positions_move(
    position_id: PositionId,
    take_profit_price: Annotated[float | None, typer.Option(help="new take-profit")] = None,
    stop_loss_price: Annotated[float | None, typer.Option(help="new stop-loss")] = None,
) -> None:
    """Move an active position's take-profit and/or stop-loss; refused when one is on the
    wrong side of the live price (a long's stop-loss at or above it)."""
    from tradepipe.position_controls import request_move

    with user_errors(_errors()), database_session() as session:
        request = request_move(
            session,
            position_id,
            by=operator_name(),
            take_profit_price=take_profit_price,
            stop_loss_price=stop_loss_price,
        )
    console.print(
        f"position {position_id} ({request.bot}) takes its new barriers at the next poll of "
        "the engine running it",
        highlight=False,
    )
