"""Routes of the control API over one `Engine`.

Events stream on the WebSocket `/ws/events` (live/api/events_ws.py): a snapshot, then
every engine event; same read rule as the GET routes (a refused handshake gets the same
status and `{"error": ...}` body as a GET would).

Status codes:
- `GET /health`: 200 while the engine is `running`; 503 in every other state (starting,
  reconciling, degraded, stopping, stopped) so that a load balancer or systemd watchdog
  sees "not trading" as unhealthy. The body is the same in both cases.
- 401: mutating route without the right bearer token; 403: no token configured (control
  disabled); both before the body is read (live/api/body_gate.py), which also answers 413 to
  a body over `max_body_bytes` and 422 to NaN, Infinity or a body that is not JSON;
  404: unknown bot or strategy; 409: a strategy that may not run the bot it is assigned to
  (live/api/strategies.py), or a model action that cannot be taken (live/api/models.py);
  501: model refresh not wired in this process; 502: the model refresh hook failed. Errors
  are `{"error": "..."}`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Response, WebSocket, params
from fastapi.encoders import jsonable_encoder
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field

from live.api.auth import TokenGuard
from live.api.body_gate import DEFAULT_MAX_BODY_BYTES, BodyGate
from live.api.bot_routes import bot_routes
from live.api.errors import ApiError, install_error_handler
from live.api.events_ws import EventStream
from live.api.history import history_router
from live.api.models import model_router
from live.api.position_routes import position_routes
from live.api.prometheus import CONTENT_TYPE, engine_registry, render
from live.api.shadow import shadow_router
from live.api.strategies import strategy_router
from live.api.views import event_body, health_body, strategies_body
from live.engine import BotStatusView, Engine
from tradepipe.bots import BotError

__all__ = ["KillSwitchRequest", "ModelRefreshRequest", "RefreshModels", "create_app"]

log = logging.getLogger(__name__)

RefreshModels = Callable[[str | None], Awaitable[object]]


class KillSwitchRequest(BaseModel):
    reason: str = Field(min_length=1, max_length=500, description="why, kept in the events")
    flatten: bool = Field(default=False, description="also leave every open position at market")


class ModelRefreshRequest(BaseModel):
    """What the model_lifecycle DAG sends after it moved an alias."""

    model_name: str | None = Field(default=None, min_length=1, max_length=200)
    version: str | int | None = None
    alias: str = Field(default="champion", min_length=1, max_length=100)


def _bot_or_404(view: BotStatusView | None, name: str) -> dict[str, Any]:
    if view is None:
        raise ApiError(
            404,
            f"no bot called {name!r} runs in this engine (a stopped bot without open "
            "positions leaves it): see GET /api/bots, or `tradepipe bots show` for the table",
        )
    result: dict[str, Any] = jsonable_encoder(view)
    return result


def _snapshot(engine: Engine) -> dict[str, Any]:
    """What a client of /ws/events gets first."""
    return {
        "type": "snapshot",
        "engine": health_body(engine.status()),
        "strategies": strategies_body(engine),
        "events": [event_body(event) for event in engine.bus.recent()],
    }


def create_app(
    engine: Engine,
    *,
    token: str | None,
    refresh_models: RefreshModels | None = None,
    events_queue_size: int = 1000,
    events_close_timeout_seconds: float = 5.0,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> FastAPI:
    """The API of `engine`; `token` guards control (None: control refused with 403).

    `events_queue_size`: events a /ws/events client may have unread before it is dropped;
    `events_close_timeout_seconds`: how long a dropped client gets to read its close frame;
    `max_body_bytes`: the largest request body read (413 beyond).
    """
    # FastAPI's own /docs and /openapi.json cannot take the read rule: served below instead.
    app = FastAPI(title="tradepipe engine", docs_url=None, redoc_url=None, openapi_url=None)
    install_error_handler(app)
    guard = TokenGuard(token)
    app.add_middleware(BodyGate, guard=guard, max_bytes=max_body_bytes)
    read = [Depends(guard.read)]
    control = [Depends(guard.control)]
    stream = EventStream(
        engine.bus,
        lambda: _snapshot(engine),
        queue_size=events_queue_size,
        close_timeout_seconds=events_close_timeout_seconds,
    )
    app.state.events = stream
    registry = engine_registry(engine, stream.metrics)

    @app.get("/openapi.json", dependencies=read, include_in_schema=False)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", dependencies=read, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="tradepipe engine API")

    @app.get("/health", dependencies=read)
    async def health() -> JSONResponse:
        status = engine.status()
        return JSONResponse(health_body(status), status_code=200 if status.healthy else 503)

    @app.get("/metrics", dependencies=read)
    async def metrics() -> Response:
        return Response(render(registry), media_type=CONTENT_TYPE)

    app.include_router(strategy_router(engine, read=read, control=control))
    app.include_router(model_router(engine, read=read, control=control))
    app.include_router(shadow_router(engine, read=read))
    app.include_router(history_router(engine, read=read))
    app.include_router(bot_routes(engine, control=control))
    app.include_router(position_routes(engine, control=control))

    app.include_router(_event_socket_router(guard, stream))
    app.include_router(_bot_switch_router(engine, read=read, control=control))
    app.include_router(_kill_switch_router(engine, control=control))
    app.include_router(_model_refresh_router(refresh_models, control=control))
    return app


def _event_socket_router(guard: TokenGuard, stream: EventStream) -> APIRouter:
    router = APIRouter()

    @router.websocket("/ws/events")
    async def events(websocket: WebSocket) -> None:
        try:
            guard.check_read(websocket, query_token=True)
        except ApiError as refusal:
            await websocket.send_denial_response(
                JSONResponse(
                    {"error": refusal.message},
                    status_code=refusal.status_code,
                    headers=refusal.headers,
                )
            )
            return
        await websocket.accept()
        await stream.serve(websocket)

    return router


def _bot_switch_router(
    engine: Engine, *, read: Sequence[params.Depends], control: Sequence[params.Depends]
) -> APIRouter:
    """Reading the running bots, and starting and stopping one."""
    router = APIRouter()

    @router.get("/api/bots", dependencies=read)
    async def list_bots() -> dict[str, Any]:
        return {"bots": jsonable_encoder(engine.status().bots)}

    @router.get("/api/bots/{name}", dependencies=read)
    async def show_bot(name: str) -> dict[str, Any]:
        return _bot_or_404(engine.bot_status(name), name)

    async def set_bot(name: str, start: bool) -> dict[str, Any]:
        try:
            view = await (engine.start_bot(name) if start else engine.stop_bot(name))
        except BotError as error:
            raise ApiError(404, str(error)) from None
        log.info("bot %s %s through the API", name, "started" if start else "stopped")
        # None: in the bots table but not run here (stopped and flat, or another engine's)
        return {"name": name, "enabled": start, "status": jsonable_encoder(view)}

    @router.post("/api/bots/{name}/start", dependencies=control)
    async def start_bot(name: str) -> dict[str, Any]:
        return await set_bot(name, True)

    @router.post("/api/bots/{name}/stop", dependencies=control)
    async def stop_bot(name: str) -> dict[str, Any]:
        return await set_bot(name, False)

    return router


def _kill_switch_router(engine: Engine, *, control: Sequence[params.Depends]) -> APIRouter:
    router = APIRouter()

    @router.post("/api/kill-switch", dependencies=control)
    async def engage(request: KillSwitchRequest) -> dict[str, Any]:
        closed = await engine.engage_kill_switch(request.reason, flatten=request.flatten)
        log.warning("kill switch engaged through the API: %s", request.reason)
        return {
            "cancelled_entries": closed,  # with flatten: the open positions left, too
            "kill_switch": jsonable_encoder(engine.status().kill_switch),
        }

    @router.delete("/api/kill-switch", dependencies=control)
    async def release() -> dict[str, Any]:
        await engine.release_kill_switch()
        log.warning("kill switch released through the API")
        return {"kill_switch": jsonable_encoder(engine.status().kill_switch)}

    return router


def _model_refresh_router(
    refresh_models: RefreshModels | None, *, control: Sequence[params.Depends]
) -> APIRouter:
    router = APIRouter()

    @router.post("/api/models/refresh", dependencies=control)
    async def refresh(request: ModelRefreshRequest) -> dict[str, Any]:
        if refresh_models is None:
            raise ApiError(
                501,
                "model refresh is not wired in this engine process; "
                "it still picks up the new version at its next registry poll",
            )
        try:
            result = await refresh_models(request.model_name)
        except Exception as error:
            log.exception("model refresh for %s failed", request.model_name)
            raise ApiError(502, f"model refresh failed: {type(error).__name__}: {error}") from None
        try:
            detail = jsonable_encoder(result)
        except (TypeError, ValueError):
            detail = str(result)
        return {"refreshed": request.model_name, "alias": request.alias, "result": detail}

    return router
