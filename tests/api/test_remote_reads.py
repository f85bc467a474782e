"""Off loopback, even the read-only routes need the token: binding the API to a public
interface must not publish bot names and positions. httpx's ASGI transport plays a peer at
a documentation address (203.0.113.5); the engine is built but not started: its status
still answers."""

from __future__ import annotations

from pathlib import Path

import httpx

from live.api import create_app
from live.engine import Engine, build_engine
from live.feeds import InMemoryFeed
from tests.api.harness import TOKEN
from tests.engine.helpers import Aio, config_for


def remote(engine: Engine, token: str | None) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(create_app(engine, token=token), client=("203.0.113.5", 4321))
    return httpx.AsyncClient(transport=transport, base_url="http://engine")


def test_reads_from_another_host_need_the_token(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    engine = build_engine(config_for(database_url, strategies_dir), feed=InMemoryFeed("binance"))

    async def scenario() -> None:
        async with remote(engine, TOKEN) as client:
            for path in ("/health", "/metrics", "/api/bots"):
                refused = await client.get(path)
                assert refused.status_code == 401 and "error" in refused.json()
            health = await client.get("/health", headers={"Authorization": f"Bearer {TOKEN}"})
            assert health.status_code == 503 and health.json()["state"] == "stopped"
        async with remote(engine, None) as client:
            assert (await client.get("/metrics")).status_code == 403

    try:
        aio.run(scenario())
    finally:
        engine.database.dispose()
