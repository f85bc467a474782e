"""A real engine (InMemoryFeed, SQLite) with its API on a real uvicorn, port 0, in one loop,
as in the engine process; the client is httpx over loopback."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from live.api import ApiServer, create_app
from live.api.app import RefreshModels
from tests.engine.helpers import Running, config_for, start_engine

TOKEN = "s3cret-token-for-tests"


@dataclass
class Api:
    running: Running
    client: httpx.AsyncClient
    app: FastAPI
    port: int

    def auth(self, token: str = TOKEN) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


@contextlib.asynccontextmanager
async def engine_api(
    database_url: str,
    strategies_dir: Path,
    *,
    token: str | None = TOKEN,
    refresh_models: RefreshModels | None = None,
    app_options: dict[str, Any] | None = None,
    **config: Any,
) -> AsyncIterator[Api]:
    """`app_options`: more keyword arguments of `create_app`; `config`: engine settings."""
    running = await start_engine(config_for(database_url, strategies_dir, **config))
    app = create_app(
        running.engine, token=token, refresh_models=refresh_models, **(app_options or {})
    )
    server = ApiServer(app, "127.0.0.1", 0)
    serving = asyncio.create_task(server.serve())
    try:
        port = await server.wait_started()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield Api(running, client, app, port)
    finally:
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving
        await running.engine.stop()
