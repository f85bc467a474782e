"""`PATCH /api/bots/{name}` (control token): change a bot's configuration while it runs.

The body is a JSON object of BotConfig fields and their new values (`{"take_profit_pct":
1.2}`; `strategy_parameters` merges, a null parameter removes it). It goes through the one
implementation, tradepipe.bot_changes (validated as at `tradepipe bots add`, recorded as a
`bot_config_changed` event with `api:<client address>` as who), then the engine reads the
bots table at once, so the change applies from the bot's next decision; open positions keep
their barriers. 200 `{"change": {"old": ..., "new": ...}, "status": ...}`; 404 unknown bot;
422 a field that cannot be set or a value refused, naming it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Body, Request
from fastapi.encoders import jsonable_encoder
from fastapi.params import Depends

from live.api.errors import ApiError
from live.engine import Engine
from tradepipe.bot_changes import BotConfigChange, change_bot_config
from tradepipe.bots import BotError, UnknownBotError
from tradepipe.db import session_scope

__all__ = ["bot_config_router"]

log = logging.getLogger(__name__)


def bot_config_router(engine: Engine, *, control: Sequence[Depends]) -> APIRouter:
    router = APIRouter()

    @router.patch("/api/bots/{name}", dependencies=control)
    async def change(
        name: str, request: Request, changes: dict[str, Any] = Body(...)
    ) -> dict[str, Any]:
        who = f"api:{request.client.host}" if request.client else "api"

        def in_session() -> BotConfigChange:
            with session_scope(engine.database.engine) as session:
                return change_bot_config(
                    session, name, changes, by=who, strategies_dir=engine.config.strategies_dir
                )

        try:
            done = await asyncio.to_thread(in_session)
        except UnknownBotError as error:
            raise ApiError(404, str(error)) from None
        except BotError as error:
            raise ApiError(422, str(error)) from None
        if done.new:
            log.info("bot %s configuration changed through the API by %s: %s", name, who, done.new)
            await engine.poll_bots()  # applied from the next decision, not the next poll
        return {"change": done.to_dict(), "status": jsonable_encoder(engine.bot_status(name))}

    return router
