"""An operator's hand on open positions, applied by the engine at once.

Two ways in, one implementation: the engine's API calls `close` / `move` / `move_bot` in
the engine's own loop (an answer at once, a refusal as OperatorError or BarrierError), and
`follow` applies the requests the CLI and the dashboard write to `engine_controls`
(tradepipe/position_controls.py) at each poll of the bots table, marking each row
`applied` or `refused`. Every action is one step of the trading core, so the state machine
events (a market exit with reason `operator`, a take-profit replaced) are written and sent
as every other step's, and an engine event records who, and the old and the new barriers.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from live.engine.bot import BotRuntime
from live.engine.core import TradingCore
from live.engine.persistence import ControlWrite
from tradepipe.enums import ExitReason, PositionStatus
from tradepipe.orders import (
    BarrierError,
    BarrierMove,
    Position,
    barrier_prices,
    barriers_of,
    check_move,
    duration_ms,
)
from tradepipe.position_controls import CLOSE, MOVE, MOVE_BOT, OperatorRequest

__all__ = ["OperatorActions", "OperatorError"]

log = logging.getLogger(__name__)


class OperatorError(LookupError):
    """No such bot in this engine, or no such open position: the message says which."""


class OperatorActions:
    def __init__(self, core: TradingCore, engine_id: str) -> None:
        self.core = core
        self.engine_id = engine_id
        self._answered: set[str] = set()  # until the table shows our answer

    def close(self, bot_name: str, seq: int, *, by: str, position_id: int | None = None) -> None:
        """Leave position `seq` of `bot_name` at market (cancel its entry if pending)."""
        bot, position = self._position(bot_name, seq)
        if position.pending_exit is not None:
            raise OperatorError(
                f"position {seq} of {bot_name} is already leaving ({position.pending_exit.value})"
            )
        time_ms = self.core.clock.now_or(position.entry.updated_at_ms)
        with self.core.step(time_ms) as step:
            step.add(bot.name, bot.book.close_position(seq, time_ms, ExitReason.OPERATOR))
        self.core.emit(
            "position_closed_by_operator",
            f"{bot.name}: position {seq} closed at market by {by}",
            bot.name,
            {"by": by, "seq": seq, "position_id": position_id, "status": position.status.value},
        )

    def move(
        self,
        bot_name: str,
        seq: int,
        move: BarrierMove,
        *,
        by: str,
        position_id: int | None = None,
    ) -> dict[str, Any]:
        """Move position `seq`'s barriers (BarrierError: refused, nothing changed)."""
        bot, position = self._position(bot_name, seq)
        self._apply(bot, [(position, move)], by, {"position_id": position_id})
        return self._changes(bot, [position])[0]

    def move_bot(self, bot_name: str, *, by: str) -> list[dict[str, Any]]:
        """Give every active position of `bot_name` the barriers of its configuration (its
        take-profit and stop-loss from the entry price, its timeout from the open time).
        All are checked first: one refused (BarrierError) moves none."""
        bot = self._bot(bot_name)
        config = bot.row.config
        moves = []
        for position in bot.book.positions:
            if position.status is not PositionStatus.ACTIVE or position.pending_exit is not None:
                continue
            assert position.entry_price is not None and position.opened_at_ms is not None
            take_profit, stop_loss = barrier_prices(
                position.side, position.entry_price, config.take_profit_pct, config.stop_loss_pct
            )
            deadline = position.opened_at_ms + duration_ms(config.max_holding_seconds)
            moves.append((position, BarrierMove(take_profit, stop_loss, deadline)))
        self._apply(bot, moves, by, {"from_config": True})
        return self._changes(bot, [position for position, _ in moves])

    def follow(self, requests: Sequence[OperatorRequest]) -> None:
        """Apply the written requests for the bots this engine runs; mark each answered."""
        for request in requests:
            if request.bot not in self.core.bots or request.name in self._answered:
                continue  # another engine's bot (or none runs it yet), or answered already
            self._answered.add(request.name)
            try:
                self._follow(request)
            except (OperatorError, BarrierError) as error:
                self._answer(request, "refused", str(error))
                self.core.emit(
                    "operator_request_refused",
                    f"{request.bot}: {request.action} by {request.by} refused: {error}",
                    request.bot,
                    {"by": request.by, "request": request.to_dict(), "error": str(error)},
                )
            else:
                self._answer(request, "applied", None)

    def _follow(self, request: OperatorRequest) -> None:
        if request.action == MOVE_BOT:
            self.move_bot(request.bot, by=request.by)
            return
        if request.seq is None:
            raise OperatorError(f"request {request.name} names no position")
        if request.action == CLOSE:
            self.close(request.bot, request.seq, by=request.by, position_id=request.position_id)
        elif request.action == MOVE:
            move = BarrierMove(request.take_profit_price, request.stop_loss_price)
            self.move(
                request.bot, request.seq, move, by=request.by, position_id=request.position_id
            )
        else:
            raise OperatorError(f"unknown request {request.action!r}")

    def _answer(self, request: OperatorRequest, state: str, error: str | None) -> None:
        value = {
            **request.to_dict(),
            "state": state,
            "error": error,
            "engine_id": self.engine_id,
            "answered_at": datetime.now(UTC).isoformat(),
        }
        self.core.recorder.submit(ControlWrite(request.name, value, self.engine_id))

    def _apply(
        self,
        bot: BotRuntime,
        moves: Sequence[tuple[Position, BarrierMove]],
        by: str,
        extra: dict[str, Any],
    ) -> None:
        price = self.core.last_trades.get(bot.symbol, (None, 0))[0]
        for position, move in moves:  # every one checked before any is applied
            check_move(position, move, price)
        time_ms = self.core.clock.now_or(0)
        olds = {position.seq: barriers_of(position) for position, _ in moves}
        with self.core.step(time_ms) as step:
            for position, move in moves:
                step.add(bot.name, bot.book.move_barriers(position.seq, move, time_ms, price))
        for position, _ in moves:
            moved = bot.book.position(position.seq)
            new = barriers_of(moved) if moved is not None else None
            self.core.emit(
                "position_barriers_moved",
                f"{bot.name}: position {position.seq} barriers moved by {by}",
                bot.name,
                {"by": by, "seq": position.seq, "old": olds[position.seq], "new": new, **extra},
            )

    def _changes(self, bot: BotRuntime, positions: Sequence[Position]) -> list[dict[str, Any]]:
        changes = []
        for before in positions:
            after = bot.book.position(before.seq)
            new = barriers_of(after) if after is not None else None
            changes.append({"seq": before.seq, "old": barriers_of(before), "new": new})
        return changes

    def _bot(self, name: str) -> BotRuntime:
        bot = self.core.bots.get(name)
        if bot is None:
            raise OperatorError(f"no bot called {name!r} runs in this engine")
        return bot

    def _position(self, bot_name: str, seq: int) -> tuple[BotRuntime, Position]:
        bot = self._bot(bot_name)
        position = bot.book.position(seq)
        if position is None:
            raise OperatorError(f"bot {bot_name} has no open position {seq}")
        return bot, position
