"""serve_api's contract: port 0, the bound port, a clean stop on cancel, a clear bind error."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import httpx
import pytest
from fastapi import FastAPI

from live.api import ApiServer, serve_api
from tests.engine.helpers import Aio


def tiny_app() -> FastAPI:
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"pong": "yes"}

    return app


def test_port_zero_serves_and_cancel_frees_the_port(aio: Aio) -> None:
    async def scenario() -> int:
        server = ApiServer(tiny_app(), "127.0.0.1", 0)
        serving = asyncio.create_task(server.serve())
        port = await server.wait_started()
        assert port > 0
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"http://127.0.0.1:{port}/ping")).json() == {"pong": "yes"}
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving
        return port

    port = aio.run(scenario())
    with socket.socket() as probe:  # nothing listens any more
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_a_port_in_use_is_an_error_not_an_exit(aio: Aio) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=f"could not listen on 127.0.0.1:{port}"):
            aio.run(serve_api(tiny_app(), "127.0.0.1", port), timeout=10)
