"""Model routes: the registry's models and the operator's actions on a champion.

The same actions as `tradepipe models` through the one implementation (tradepipe.model_ops),
recorded with `api:<client address>` as who and the request's reason as why; after an
action the engine checks every model in use at once, so its bots swap without waiting for
the next registry poll.

- `GET /api/models`: every registered model (champion, challenger, rollback target, pin).
- `GET /api/models/{name}`: versions with aliases and tags, and every promotion decision.
- `POST /api/models/{name}/promote` `{"version": "7", "reason": "..."}`,
  `POST /api/models/{name}/rollback`, `/pin`, `/unpin` `{"reason": "..."}` (control token):
  404 unknown model or version; 409 an action that cannot be taken (pinned, nothing to roll
  back to, not pinned); 502 the registry failed; 200 `{"action": {...}}` otherwise.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.encoders import jsonable_encoder
from fastapi.params import Depends
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from live.api.errors import ApiError
from live.engine import Engine
from tradepipe import model_ops
from tradepipe.db import session_scope
from tradepipe.registry import ModelNotFoundError, ModelRegistry, RegistryError

__all__ = ["ModelActionRequest", "PromoteRequest", "model_router"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class ModelActionRequest(BaseModel):
    reason: str = Field(min_length=1, max_length=500, description="why: recorded with the action")


class PromoteRequest(ModelActionRequest):
    version: str | int = Field(description="the version to make champion")


def model_router(
    engine: Engine, *, read: Sequence[Depends], control: Sequence[Depends]
) -> APIRouter:
    router = APIRouter()
    registries: list[ModelRegistry] = []

    def registry() -> ModelRegistry:
        if not registries:  # built on first use: an engine without models never needs one
            registries.append(ModelRegistry(engine.config.mlflow_tracking_uri))
        return registries[0]

    async def call(function: Callable[[ModelRegistry, Session], T]) -> T:
        def in_session() -> T:
            # The engine's database, in a short transaction of its own (a worker thread:
            # the registry and the database are blocking calls).
            with session_scope(engine.database.engine) as session:
                return function(registry(), session)

        try:
            return await asyncio.to_thread(in_session)
        except ModelNotFoundError as error:
            raise ApiError(404, str(error)) from None
        except RegistryError as error:  # pinned, nothing to roll back to, not pinned...
            raise ApiError(409, str(error)) from None
        except Exception as error:  # the registry's own failures: unreachable, refused
            log.exception("model registry call failed")
            raise ApiError(502, f"model registry: {type(error).__name__}: {error}") from None

    async def act(
        request: Request, action: str, act_on: Callable[[ModelRegistry, Session, str], Any]
    ) -> dict[str, Any]:
        who = f"api:{request.client.host}" if request.client else "api"
        done: model_ops.ModelAction = await call(lambda reg, session: act_on(reg, session, who))
        log.warning(
            "model %s: %s through the API by %s (%s): champion %s -> %s",
            done.model, action, who, done.reason, done.champion_before, done.champion_after,
        )  # fmt: skip
        await engine.watcher.poll()  # swap the bots now, not at the next poll
        return {"action": done.to_dict()}

    @router.get("/api/models", dependencies=read)
    async def list_models() -> dict[str, Any]:
        models = await call(lambda reg, _session: model_ops.list_models(reg))
        return {"models": jsonable_encoder([asdict(model) for model in models])}

    @router.get("/api/models/{name}", dependencies=read)
    async def show_model(name: str) -> dict[str, Any]:
        detail = await call(lambda reg, session: model_ops.show_model(reg, name, session))
        body: dict[str, Any] = jsonable_encoder(detail.to_dict())
        return body

    @router.post("/api/models/{name}/promote", dependencies=control)
    async def promote(name: str, body: PromoteRequest, request: Request) -> dict[str, Any]:
        return await act(
            request,
            "promote",
            lambda reg, session, who: model_ops.promote(
                reg, name, str(body.version), by=who, reason=body.reason, session=session
            ),
        )

    def simple(action: Callable[..., model_ops.ModelAction], verb: str) -> None:
        @router.post(f"/api/models/{{name}}/{verb}", dependencies=control, name=verb)
        async def route(name: str, body: ModelActionRequest, request: Request) -> dict[str, Any]:
            return await act(
                request,
                verb,
                lambda reg, session, who: action(
                    reg, name, by=who, reason=body.reason, session=session
                ),
            )

    simple(model_ops.rollback, "rollback")
    simple(model_ops.pin, "pin")
    simple(model_ops.unpin, "unpin")
    return router
