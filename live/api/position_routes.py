"""An operator's hand on one open position (control token), applied by this engine at once
through live/engine/operator.py, as the CLI's requests are at its next poll.

- `POST /api/positions/{id}/close`: leave the position at market through the order state
  machine (a pending entry is cancelled); exit reason `operator`, recorded with
  `api:<client address>` as who. 200 `{"position_id", "bot", "seq"}`.
- `PATCH /api/positions/{id}` `{"take_profit_price": 104.5, "stop_loss_price": 97.0}` (either
  or both): move the barriers of an active position; the take-profit order is replaced,
  the stop-loss watched at the next trade. 200 `{"position_id", "bot", "seq", "old",
  "new"}`; 422 a barrier on the wrong side of the engine's last trade price (a long's stop
  at or above it) or not a positive number, naming it.

404: no such position; 409: closed already, already leaving, or its bot does not run in
this engine (another engine's: ask that one, or use the CLI, which every engine follows).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from fastapi import APIRouter, Request
from fastapi.params import Depends
from pydantic import BaseModel, Field

from live.api.errors import ApiError
from live.engine import Engine
from live.engine.operator import OperatorError
from tradepipe.db import session_scope
from tradepipe.orders import BarrierError, BarrierMove
from tradepipe.position_controls import (
    OpenPositionRef,
    PositionControlError,
    UnknownPositionError,
    locate_position,
)

__all__ = ["BarrierRequest", "operator_who", "position_routes"]


class BarrierRequest(BaseModel):
    take_profit_price: float | None = Field(default=None, gt=0, description="new take-profit")
    stop_loss_price: float | None = Field(default=None, gt=0, description="new stop-loss")


def operator_who(request: Request) -> str:
    return f"api:{request.client.host}" if request.client else "api"


def position_routes(engine: Engine, *, control: Sequence[Depends]) -> APIRouter:
    router = APIRouter()

    async def located(position_id: int) -> OpenPositionRef:
        def run() -> OpenPositionRef:
            with session_scope(engine.database.engine) as session:
                return locate_position(session, position_id)

        try:
            return await asyncio.to_thread(run)
        except UnknownPositionError as error:
            raise ApiError(404, str(error)) from None
        except PositionControlError as error:
            raise ApiError(409, str(error)) from None

    @router.post("/api/positions/{position_id}/close", dependencies=control)
    async def close(position_id: int, request: Request) -> dict[str, object]:
        found = await located(position_id)
        try:
            engine.operator.close(
                found.bot, found.seq, by=operator_who(request), position_id=position_id
            )
        except OperatorError as error:
            raise ApiError(409, str(error)) from None
        return {"position_id": position_id, "bot": found.bot, "seq": found.seq}

    @router.patch("/api/positions/{position_id}", dependencies=control)
    async def move(position_id: int, body: BarrierRequest, request: Request) -> dict[str, object]:
        found = await located(position_id)
        wanted = BarrierMove(body.take_profit_price, body.stop_loss_price)
        try:
            change = engine.operator.move(
                found.bot, found.seq, wanted, by=operator_who(request), position_id=position_id
            )
        except OperatorError as error:
            raise ApiError(409, str(error)) from None
        except BarrierError as error:
            raise ApiError(422, f"position {position_id}: {error}") from None
        return {"position_id": position_id, "bot": found.bot, **change}

    return router
