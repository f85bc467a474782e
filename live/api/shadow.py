"""Shadow routes: what the challengers traded in shadow (live/engine/shadow.py).

- `GET /api/shadow?model=NAME`: the shadow runs of challengers, one per bot, challenger
  version and engine start: decisions, entries, open and closed positions, net PnL.
- `GET /api/shadow/{run_id}/positions`: a run's shadow positions (404 unknown run).

Shadow results are never among `/api/orders` or `/api/positions`: they never reached a venue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from fastapi import APIRouter
from fastapi.params import Depends
from sqlalchemy.orm import Session

from live.api.errors import ApiError
from live.engine import Engine
from tradepipe.db import list_shadow_runs, session_scope
from tradepipe.db.shadow import list_shadow_positions

__all__ = ["shadow_router"]

T = TypeVar("T")


def shadow_router(engine: Engine, *, read: Sequence[Depends]) -> APIRouter:
    router = APIRouter()

    async def database(function: Callable[[Session], T]) -> T:
        def in_session() -> T:  # a worker thread: the database is blocking
            with session_scope(engine.database.engine) as session:
                return function(session)

        return await asyncio.to_thread(in_session)

    @router.get("/api/shadow", dependencies=read)
    async def shadow_runs(model: str | None = None) -> dict[str, Any]:
        runs = await database(lambda session: list_shadow_runs(session, model_name=model))
        return {"runs": [run.to_dict() for run in runs]}

    @router.get("/api/shadow/{run_id}/positions", dependencies=read)
    async def shadow_positions(run_id: int) -> dict[str, Any]:
        positions = await database(lambda session: list_shadow_positions(session, run_id))
        if positions is None:
            raise ApiError(404, f"no shadow run {run_id}")
        return {"run_id": run_id, "positions": positions}

    return router
