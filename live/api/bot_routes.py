"""Bots CRUD on the bots table (control token), through the kernel as the CLI does; after
each, the engine reads the table at once, so the change applies from the next decision.

- `POST /api/bots` `{"name", "strategy", "symbol", "timeframe", "config": {...},
  "enabled": true}`: a paper bot, validated as `tradepipe bots add` validates it (the symbol
  against the venue's list when the engine has the venue's REST URL); 201 with its row, 409
  when the name is taken, 422 for anything refused. Testnet and live bots are created with
  the CLI only, which asks for their explicit opt-in.
- `DELETE /api/bots/{name}`: a bot that never traded; 409 for one with history (disable it:
  `POST /api/bots/{name}/stop`), 404 unknown.
- `PATCH /api/bots/{name}`: change a bot's configuration while it runs. The body is a JSON
  object of BotConfig fields and their new values (`{"take_profit_pct": 1.2}`;
  `strategy_parameters` merges, a null parameter removes it), through the one
  implementation, tradepipe.bot_changes (validated as at `tradepipe bots add`, recorded as
  a `bot_config_changed` event with `api:<client address>` as who); it applies from the
  bot's next decision and open positions keep their barriers, unless the body also says
  `"move_open": true`: then the bot's active positions take the new take-profit, stop-loss
  and timeout at once (from their entry price and open time; live/engine/operator.py),
  listed under `"moved"` with their old and new barriers. 200 `{"change": {"old": ...,
  "new": ...}, "moved": [...], "status": ...}`; 404 unknown bot; 422 a field that cannot be
  set or a value refused, naming it, or (the change kept) a moved barrier that would sit on
  the wrong side of the current price, when no position is moved.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, TypeVar

from fastapi import APIRouter, Body, Request
from fastapi.encoders import jsonable_encoder
from fastapi.params import Depends
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from live.api.errors import ApiError
from live.api.position_routes import operator_who
from live.engine import Engine
from live.engine.operator import OperatorError
from tradepipe.bot_changes import change_bot_config
from tradepipe.botconfig import BotConfigError, parse_bot_config
from tradepipe.bots import (
    BotConflictError,
    BotError,
    NewBot,
    UnknownBotError,
    add_bot,
    check_listed,
    remove_bot,
)
from tradepipe.db import session_scope
from tradepipe.enums import BotMode
from tradepipe.orders import BarrierError

__all__ = ["NewBotRequest", "bot_routes"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class NewBotRequest(BaseModel):
    name: str = Field(min_length=1, max_length=20)
    strategy: str = Field(min_length=1, max_length=100)
    symbol: str = Field(min_length=1, max_length=30)
    timeframe: str = Field(min_length=1, max_length=8)
    config: dict[str, Any]
    exchange: str = "binance"
    enabled: bool = True


def bot_routes(engine: Engine, *, control: Sequence[Depends]) -> APIRouter:
    router = APIRouter()

    async def in_session(function: Callable[[Session], T]) -> T:
        def run() -> T:
            with session_scope(engine.database.engine) as session:
                return function(session)

        try:
            return await asyncio.to_thread(run)
        except UnknownBotError as error:
            raise ApiError(404, str(error)) from None
        except BotConflictError as error:
            raise ApiError(409, str(error)) from None
        except BotError as error:
            raise ApiError(422, str(error)) from None

    @router.post("/api/bots", dependencies=control, status_code=201)
    async def create(body: NewBotRequest) -> dict[str, Any]:
        try:
            config = parse_bot_config(body.config, bot=body.name)
        except BotConfigError as error:
            raise ApiError(422, str(error)) from None
        new = NewBot(
            body.name, body.strategy, body.symbol, body.timeframe, config, body.exchange,
            BotMode.PAPER, body.enabled,
        )  # fmt: skip
        rest_url = engine.config.rest_url
        listed = (
            None
            if rest_url is None
            else partial(check_listed, rest_url=rest_url, timeout_seconds=10.0)
        )
        view = await in_session(
            lambda session: add_bot(session, new, engine.config.strategies_dir, listed=listed)
        )
        log.info("bot %s added through the API", body.name)
        await engine.poll_bots()
        return {
            "bot": jsonable_encoder(view),
            "status": jsonable_encoder(engine.bot_status(body.name)),
        }

    @router.delete("/api/bots/{name}", dependencies=control)
    async def delete(name: str) -> dict[str, Any]:
        await in_session(lambda session: remove_bot(session, name))
        log.info("bot %s removed through the API", name)
        await engine.poll_bots()
        return {"removed": name}

    @router.patch("/api/bots/{name}", dependencies=control)
    async def change(
        name: str, request: Request, changes: dict[str, Any] = Body(...)
    ) -> dict[str, Any]:
        who = operator_who(request)
        changes = dict(changes)
        move_open = changes.pop("move_open", False)
        if not isinstance(move_open, bool):
            raise ApiError(422, f"move_open must be true or false, got {move_open!r}")
        done = await in_session(
            lambda session: change_bot_config(
                session, name, changes, by=who, strategies_dir=engine.config.strategies_dir
            )
        )
        if done.new:
            log.info("bot %s configuration changed through the API by %s: %s", name, who, done.new)
            await engine.poll_bots()  # applied from the next decision, not the next poll
        moved = _move_open(engine, name, who) if move_open else []
        return {
            "change": done.to_dict(),
            "moved": moved,
            "status": jsonable_encoder(engine.bot_status(name)),
        }

    return router


def _move_open(engine: Engine, name: str, who: str) -> list[dict[str, Any]]:
    try:
        return engine.operator.move_bot(name, by=who)
    except OperatorError as error:  # kept in the table, but not run here: nothing to move
        raise ApiError(
            409, f"configuration changed; {error}, so none of its positions moved"
        ) from None
    except BarrierError as error:
        raise ApiError(
            422, f"configuration changed (applies from the next entry); no position moved: {error}"
        ) from None
