"""Strategy routes: what the engine's strategy catalogue knows, and assigning a strategy.

They read the engine's own catalogue (`engine.strategies`), not the registry table: the
catalogue is what the bots in this process run, including the version kept running while
the file is broken. The table (`tradepipe strategies list`) may lag by a sync.

- `GET /api/strategies`, `GET /api/strategies/{name}`: status, content hash, version count,
  error (`file:line: message`) and its line, class name, file path, the bots using it;
  404 for a name the engine has never seen.
- `POST /api/bots/{name}/strategy` `{"strategy": "<name>"}` (control token): 404 unknown
  bot; 409 when the strategy may not run that bot (unknown, invalid, removed, or its
  parameters do not validate against the bot's config), with the engine's reason; 200 with
  the bot's status otherwise. A bot that keeps its open positions keeps managing them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter
from fastapi.encoders import jsonable_encoder
from fastapi.params import Depends
from pydantic import BaseModel, Field

from live.api.errors import ApiError
from live.api.views import strategy_body
from live.engine import Engine, StrategyAssignError
from tradepipe.bots import BotError

__all__ = ["AssignStrategyRequest", "strategy_router"]

log = logging.getLogger(__name__)


class AssignStrategyRequest(BaseModel):
    strategy: str = Field(min_length=1, max_length=100, description="strategy name (file stem)")


def strategy_router(
    engine: Engine, *, read: Sequence[Depends], control: Sequence[Depends]
) -> APIRouter:
    router = APIRouter()

    @router.get("/api/strategies", dependencies=read)
    async def list_strategies() -> dict[str, Any]:
        return {"strategies": [strategy_body(info) for info in engine.strategies.list()]}

    @router.get("/api/strategies/{name}", dependencies=read)
    async def show_strategy(name: str) -> dict[str, Any]:
        info = engine.strategies.get(name)
        if info is None:
            raise ApiError(
                404,
                f"no strategy called {name!r} in this engine's strategies folder: "
                "see GET /api/strategies",
            )
        return strategy_body(info)

    @router.post("/api/bots/{name}/strategy", dependencies=control)
    async def assign(name: str, request: AssignStrategyRequest) -> dict[str, Any]:
        try:
            view = await engine.assign_strategy(name, request.strategy)
        except BotError as error:
            raise ApiError(404, str(error)) from None
        except StrategyAssignError as error:
            raise ApiError(409, str(error)) from None
        log.info("bot %s assigned strategy %s through the API", name, request.strategy)
        # None: in the bots table but not run here (stopped and flat, or another engine's)
        return {"name": name, "strategy": request.strategy, "status": jsonable_encoder(view)}

    return router
