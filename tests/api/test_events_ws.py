"""`/ws/events` on a real engine and a real uvicorn, with real WebSocket clients over
loopback: the snapshot, every event in the bus's order, slow clients dropped without
holding back the engine or the other clients, no subscription left behind, the read rule."""

from __future__ import annotations

import asyncio
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from live.api.auth import NO_TOKEN_MESSAGE
from live.api.events_ws import DROP_CLOSE_CODE, DROP_REASON, EventStream
from live.engine import EngineEvent
from tests.api.harness import TOKEN, Api, engine_api
from tests.api.promtext import parse, value
from tests.api.wsclient import REMOTE, events_client, events_until, receive
from tests.engine.helpers import Aio, add_bots, push, walk

# Raises only once the test arms it, so the strategy passes validation and the bot runs
# until then: the error comes from trading, as it would in production.
TRIPWIRE = """
from pathlib import Path

from tradepipe.strategy import Strategy, StrategyParameters


class Tripwire(Strategy[StrategyParameters]):
    def on_candle(self, context):
        if Path(__file__).with_name("tripwire.armed").exists():
            raise RuntimeError("tripped at " + str(context.candle.start_ms))
        return None
"""


def wire(event: EngineEvent) -> tuple[str, str, str | None]:
    return (event.kind, event.message, event.bot)


def received(message: dict[str, Any]) -> tuple[str, str, str | None]:
    return (message["kind"], message["message"], message["bot"])


def stream(api: Api) -> EventStream:
    events: EventStream = api.app.state.events
    return events


async def api_metrics(api: Api) -> dict[str, float]:
    samples, types = parse((await api.client.get("/metrics")).text)
    assert types["tradepipe_api_events_sent"] == "counter"
    assert types["tradepipe_api_events_clients"] == "gauge"
    names = ("events_clients", "events_sent_total", "events_clients_dropped_total")
    return {name: value(samples, f"tradepipe_api_{name}") for name in names}


def test_snapshot_then_every_event_in_the_order_of_the_bus(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    (strategies_dir / "tripwire.py").write_text(TRIPWIRE)
    add_bots(database_url, strategies_dir, [("gamma", "tripwire")])

    async def scenario() -> None:
        async with engine_api(database_url, strategies_dir) as api:
            engine = api.running.engine
            async with events_client(api) as websocket:
                snapshot = await receive(websocket)
                assert snapshot["type"] == "snapshot"
                health = (await api.client.get("/health")).json()
                assert snapshot["engine"].keys() == health.keys()
                assert snapshot["engine"]["engine_id"] == health["engine_id"]
                assert snapshot["engine"]["state"] == "running"
                assert snapshot["engine"]["healthy"] is True
                assert {bot["name"] for bot in snapshot["engine"]["bots"]} == {
                    "alpha",
                    "beta",
                    "gamma",
                }
                strategies = (await api.client.get("/api/strategies")).json()["strategies"]
                assert snapshot["strategies"] == strategies
                assert {"always", "always_limit", "tripwire"} <= {s["name"] for s in strategies}
                before = engine.bus.recent()
                assert [received(e) for e in snapshot["events"]] == [wire(e) for e in before]
                kinds = [e["kind"] for e in snapshot["events"]]
                assert kinds.count("bot_started") == 3 and "engine_reconciled" in kinds

                # control through the API, and trading that breaks gamma's strategy
                auth = api.auth()
                await api.client.post("/api/kill-switch", json={"reason": "ws"}, headers=auth)
                await api.client.delete("/api/kill-switch", headers=auth)
                await api.client.post("/api/bots/beta/stop", headers=auth)
                (strategies_dir / "tripwire.armed").touch()
                trades = walk(600)
                while engine.bot_status("gamma").state.value != "error":  # type: ignore[union-attr]
                    await push(api.running, [next(trades)])
                await api.client.post("/api/bots/beta/start", headers=auth)
                events = await events_until(
                    websocket, lambda e: e["kind"] == "bot_started" and e["bot"] == "beta"
                )
                published = engine.bus.recent()[len(before) : len(before) + len(events)]
                assert [received(e) for e in events] == [wire(e) for e in published]
                order = [(e["kind"], e["bot"]) for e in events]
                expected = [
                    ("kill_switch_engaged", None),
                    ("kill_switch_released", None),
                    ("bot_stopped", "beta"),
                    ("bot_error", "gamma"),
                    ("bot_started", "beta"),
                ]
                assert [step for step in order if step in expected] == expected
                error = next(e for e in events if e["kind"] == "bot_error")
                assert "tripped at" in error["message"] and error["data"]["strategy_hash"]

                # alpha trades meanwhile: its orders and positions reach the socket too
                closed = asyncio.create_task(
                    events_until(
                        websocket, lambda e: e["kind"] == "position_closed" and e["bot"] == "alpha"
                    )
                )
                while not closed.done():
                    await push(api.running, [next(trades)])
                events += await closed
                # the bus may have published more since (alpha enters again at once)
                published = engine.bus.recent()[len(before) : len(before) + len(events)]
                assert [received(e) for e in events] == [wire(e) for e in published]
                alpha = [e["kind"] for e in events if e["bot"] == "alpha"]
                for kind in ("order_placed", "order_filled", "position_opened"):
                    assert alpha.index(kind) < alpha.index("position_closed"), alpha
                assert alpha.index("order_placed") < alpha.index("order_filled")
                for event in events:
                    assert datetime.fromisoformat(event["at"]).tzinfo is not None
                    assert set(event) == {"type", "kind", "message", "bot", "data", "at"}

    aio.run(scenario())


def test_a_slow_client_is_dropped_and_counted_while_the_engine_and_a_fast_client_go_on(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    options = {"events_queue_size": 8, "events_close_timeout_seconds": 30.0}

    async def scenario() -> None:
        async with engine_api(database_url, strategies_dir, app_options=options) as api:
            engine = api.running.engine
            async with (
                events_client(api, max_queue=1) as slow,
                events_client(api) as fast,
            ):
                assert (await receive(fast))["type"] == "snapshot"
                seen: list[dict[str, Any]] = []
                trades = walk(2_000)
                decisions_before = engine.bot_status("alpha").decisions  # type: ignore[union-attr]
                # The slow client never reads: its socket buffers fill, then its queue.
                # Each filler is incompressible and the fast client reads each one before
                # the next is published, as a screen that keeps up does.
                sequence = 0
                while stream(api).dropped_total == 0:
                    assert sequence < 20_000, "the slow client was never dropped"
                    filler = os.urandom(32_768).hex()
                    engine.bus.publish(EngineEvent("filler", f"n={sequence}", data={"f": filler}))
                    await push(api.running, [next(trades)])
                    seen.append(await receive(fast))
                    sequence += 1

                figures = await api_metrics(api)
                assert figures["events_clients_dropped_total"] == 1
                assert figures["events_clients"] == 1  # the fast one
                assert figures["events_sent_total"] >= sequence
                # the engine kept trading throughout and goes on
                assert engine.status().state.value == "running"
                await push(api.running, [next(trades) for _ in range(20)])
                decisions_after = engine.bot_status("alpha").decisions  # type: ignore[union-attr]
                assert decisions_after > decisions_before
                # the fast client got every event, in order, and still gets new ones
                engine.bus.publish(EngineEvent("after_drop", "still here"))
                rest = await events_until(fast, lambda e: e["kind"] == "after_drop")
                fillers = [e["message"] for e in [*seen, *rest] if e["kind"] == "filler"]
                assert fillers == [f"n={n}" for n in range(sequence)]

                # the slow client, reading at last, finds a close frame that says why
                with pytest.raises(ConnectionClosed) as closed:
                    while True:
                        await asyncio.wait_for(slow.recv(), 10)
                assert closed.value.rcvd is not None
                assert closed.value.rcvd.code == DROP_CLOSE_CODE
                assert closed.value.rcvd.reason == DROP_REASON

    aio.run(scenario(), timeout=120)


def test_a_disconnect_leaves_no_subscription_behind(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    async def scenario() -> None:
        async with engine_api(database_url, strategies_dir) as api:
            bus = api.running.engine.bus
            listeners = len(bus._subscribers)
            async with events_client(api) as first, events_client(api) as second:
                for websocket in (first, second):
                    assert (await receive(websocket))["type"] == "snapshot"
                assert (await api_metrics(api))["events_clients"] == 2
                assert len(bus._subscribers) == listeners + 1  # one fan-out for every client
                bus.publish(EngineEvent("ping", "both"))
                for websocket in (first, second):
                    assert (await receive(websocket))["kind"] == "ping"
                await first.close()
                await aio.eventually(
                    lambda: stream(api).metrics()["events_clients"] == 1, "first to leave"
                )
                bus.publish(EngineEvent("ping", "second only"))
                assert (await receive(second))["message"] == "second only"
            await aio.eventually(
                lambda: len(bus._subscribers) == listeners, "the stream to unsubscribe"
            )
            figures = await api_metrics(api)
            assert figures["events_clients"] == 0 and figures["events_sent_total"] == 3
            assert figures["events_clients_dropped_total"] == 0

    aio.run(scenario())


def test_the_read_rule_applies_to_the_events_socket(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    async def refused(api: Api, status: int, **options: Any) -> str:
        with pytest.raises(InvalidStatus) as refusal:
            async with events_client(api, **options):
                pass
        response = refusal.value.response
        assert response.status_code == status
        return response.body.decode()

    async def scenario() -> None:
        async with engine_api(database_url, strategies_dir) as api:
            async with events_client(api) as local:  # loopback reads are open
                assert (await receive(local))["type"] == "snapshot"
            assert "missing bearer token" in await refused(api, 401, headers=REMOTE)
            bad = await refused(api, 401, headers={**REMOTE, **api.auth("wrong")})
            assert "invalid bearer token" in bad and TOKEN not in bad
            assert "invalid" in await refused(api, 401, headers=REMOTE, token="wrong")
            # a GET from the same remote peer is refused the same way
            assert (await api.client.get("/api/bots", headers=REMOTE)).status_code == 401
            async with events_client(api, headers={**REMOTE, **api.auth()}) as header:
                assert (await receive(header))["type"] == "snapshot"
            async with events_client(api, headers=REMOTE, token=TOKEN) as query:
                assert (await receive(query))["type"] == "snapshot"
        async with engine_api(database_url, strategies_dir, token=None) as api:
            body = await refused(api, 403, headers=REMOTE, token="anything")
            assert NO_TOKEN_MESSAGE in body
            async with events_client(api) as local:
                assert (await receive(local))["type"] == "snapshot"

    aio.run(scenario())


def test_strategy_file_changes_reach_the_socket_in_order(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    """Real files added, edited, broken and deleted while alpha trades on `always`."""
    always = strategies_dir / "always.py"
    original = always.read_text()

    def strategy_event(kind: str, name: str) -> Any:
        return lambda e: e["kind"] == kind and e["data"].get("strategy") == name

    async def scenario() -> None:
        async with (
            engine_api(database_url, strategies_dir) as api,
            events_client(api) as websocket,
        ):
            snapshot = await receive(websocket)
            hashes = {s["name"]: s["content_hash"] for s in snapshot["strategies"]}
            events: list[dict[str, Any]] = []

            (strategies_dir / "fresh.py").write_text(TRIPWIRE.replace("Tripwire", "Fresh"))
            events += await events_until(websocket, strategy_event("strategy_added", "fresh"))

            always.write_text(original + "\n# edited\n")
            events += await events_until(
                websocket, lambda e: e["kind"] == "bot_reloaded" and e["bot"] == "alpha"
            )
            edited_hash = next(
                e["data"]["content_hash"] for e in events if e["kind"] == "strategy_edited"
            )
            assert edited_hash != hashes["always"]

            always.write_text(original + "\ndef broken(:\n")
            events += await events_until(websocket, strategy_event("strategy_invalid", "always"))
            invalid = events[-1]
            assert invalid["data"]["line"] == original.count("\n") + 2
            assert f"always.py:{invalid['data']['line']}:" in invalid["data"]["error"]
            alpha = api.running.engine.bot_status("alpha")
            assert alpha is not None and alpha.strategy_hash == edited_hash

            always.unlink()
            events += await events_until(
                websocket, lambda e: e["kind"] == "bot_fell_back" and e["bot"] == "alpha"
            )
            fell_back = events[-1]
            assert fell_back["data"]["from"] == "always"
            assert fell_back["data"]["to"] == "ema_rsi"

            lifecycle = [
                (e["kind"], e["bot"] or e["data"].get("strategy"))
                for e in events
                if e["kind"].startswith("strategy_") or e["kind"].startswith("bot_")
            ]
            assert lifecycle == [
                ("strategy_added", "fresh"),
                ("strategy_edited", "always"),
                ("bot_reloaded", "alpha"),
                ("strategy_invalid", "always"),
                ("strategy_removed", "always"),
                ("bot_fell_back", "alpha"),
            ]
            shown = (await api.client.get("/api/strategies/always")).json()
            assert shown["status"] == "removed" and shown["bots"] == []

    aio.run(scenario())


def test_stopping_the_api_closes_the_sockets_and_unsubscribes(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    async def scenario() -> None:
        serving = engine_api(database_url, strategies_dir)
        api = await serving.__aenter__()
        stopped = False
        try:
            bus = api.running.engine.bus
            listeners = len(bus._subscribers)
            async with events_client(api) as websocket:
                assert (await receive(websocket))["type"] == "snapshot"
                assert len(bus._subscribers) == listeners + 1
                stopped = True
                await serving.__aexit__(None, None, None)  # while the client is connected
                with pytest.raises(ConnectionClosed) as closed:
                    while True:
                        await asyncio.wait_for(websocket.recv(), 5)
                assert closed.value.rcvd is not None
                assert closed.value.rcvd.code == 1012  # service restart: come back later
            assert stream(api).metrics()["events_clients"] == 0
            assert len(bus._subscribers) == listeners
        finally:
            if not stopped:
                await serving.__aexit__(None, None, None)

    aio.run(scenario())
