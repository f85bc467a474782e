"""The control API over a real engine (InMemoryFeed, SQLite) and a real uvicorn on loopback."""

from __future__ import annotations

from pathlib import Path

from live.api.auth import NO_TOKEN_MESSAGE
from live.feeds import FeedState
from tests.api.harness import TOKEN, engine_api
from tests.api.promtext import parse, value
from tests.engine.helpers import Aio, push, query, walk

MUTATIONS = [
    ("POST", "/api/bots/alpha/start", None),
    ("POST", "/api/bots/alpha/stop", None),
    ("POST", "/api/kill-switch", {"reason": "test"}),
    ("DELETE", "/api/kill-switch", None),
    ("POST", "/api/models/refresh", {"model_name": "m"}),
]


def test_health_is_200_while_running_and_503_otherwise(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    async def scenario() -> None:
        async with engine_api(database_url, strategies_dir) as api:
            response = await api.client.get("/health")
            assert response.status_code == 200
            body = response.json()
            assert body["state"] == "running" and body["healthy"] is True
            assert body["feed"]["state"] == "connected"
            assert body["database"]["available"] is True
            assert body["kill_switch"]["engaged"] is False
            assert body["broker"] and body["engine_id"]
            bots = {bot["name"]: bot for bot in body["bots"]}
            assert set(bots) == {"alpha", "beta"}
            assert bots["alpha"]["strategy"] == "always" and bots["alpha"]["enabled"] is True

            api.running.feed.set_state(FeedState.BACKING_OFF, "connection refused")
            response = await api.client.get("/health")
            assert response.status_code == 503
            assert response.json()["state"] == "degraded"
            assert response.json()["feed"]["last_error"] == "connection refused"

            await api.running.engine.stop()
            response = await api.client.get("/health")
            assert response.status_code == 503 and response.json()["state"] == "stopped"

    aio.run(scenario())


def test_metrics_are_prometheus_text_with_engine_bot_and_feed_figures(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    async def scenario() -> None:
        async with engine_api(database_url, strategies_dir) as api:
            await push(api.running, walk(60))
            api.running.feed.push_raw(b"{not json")
            response = await api.client.get("/metrics")
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
            samples, types = parse(response.text)
            assert types["tradepipe_engine_feed_messages"] == "counter"
            assert types["tradepipe_bot_open_positions"] == "gauge"
            assert value(samples, "tradepipe_engine_feed_messages_total") >= 60
            assert value(samples, "tradepipe_engine_feed_parse_errors_total") == 1
            assert value(samples, "tradepipe_engine_feed_reconnects_total") == 0
            assert value(samples, "tradepipe_engine_state", state="running") == 1
            assert value(samples, "tradepipe_engine_state", state="degraded") == 0
            assert value(samples, "tradepipe_feed_state", state="connected") == 1
            assert value(samples, "tradepipe_bot_state", bot="alpha", state="running") == 1
            assert value(samples, "tradepipe_bot_state", bot="alpha", state="error") == 0
            entries = value(samples, "tradepipe_bot_entries_total", bot="alpha")
            assert entries >= 1
            assert entries == api.running.engine.bot_status("alpha").entries  # type: ignore[union-attr]
            assert value(samples, "tradepipe_bot_open_positions", bot="beta") >= 0

    aio.run(scenario())


def test_bots_list_show_and_unknown(aio: Aio, database_url: str, strategies_dir: Path) -> None:
    async def scenario() -> None:
        async with engine_api(database_url, strategies_dir) as api:
            listed = (await api.client.get("/api/bots")).json()["bots"]
            assert sorted(bot["name"] for bot in listed) == ["alpha", "beta"]
            shown = await api.client.get("/api/bots/beta")
            assert shown.status_code == 200
            assert shown.json()["strategy"] == "always_limit"
            assert shown.json()["symbol"] == "BTCUSDT"
            missing = await api.client.get("/api/bots/nope")
            assert missing.status_code == 404
            assert "nope" in missing.json()["error"]
            unknown = await api.client.post("/api/bots/nope/start", headers=api.auth())
            assert unknown.status_code == 404 and "nope" in unknown.json()["error"]

    aio.run(scenario())


def test_stop_and_start_change_the_bot_and_the_bots_table(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    def enabled() -> bool:
        [row] = query(database_url, "SELECT enabled FROM bots WHERE name = 'alpha'")
        return bool(row.enabled)

    async def scenario() -> None:
        async with engine_api(database_url, strategies_dir) as api:
            stopped = await api.client.post("/api/bots/alpha/stop", headers=api.auth())
            assert stopped.status_code == 200, stopped.text
            assert stopped.json()["enabled"] is False
            # a stopped bot without open positions leaves the engine: no status, not listed
            assert stopped.json()["status"] is None
            assert not enabled()
            assert (await api.client.get("/api/bots/alpha")).status_code == 404
            names = [bot["name"] for bot in (await api.client.get("/api/bots")).json()["bots"]]
            assert names == ["beta"]

            started = await api.client.post("/api/bots/alpha/start", headers=api.auth())
            assert started.status_code == 200
            assert started.json()["status"]["enabled"] is True
            assert started.json()["status"]["name"] == "alpha"
            assert enabled()
            assert (await api.client.get("/api/bots/alpha")).status_code == 200

    aio.run(scenario())


def test_kill_switch_engage_and_release(aio: Aio, database_url: str, strategies_dir: Path) -> None:
    async def scenario() -> None:
        async with engine_api(database_url, strategies_dir) as api:
            await push(api.running, walk(60))
            missing_reason = await api.client.post("/api/kill-switch", json={}, headers=api.auth())
            assert missing_reason.status_code == 422
            engaged = await api.client.post(
                "/api/kill-switch", json={"reason": "operator: flash crash"}, headers=api.auth()
            )
            assert engaged.status_code == 200, engaged.text
            assert engaged.json()["cancelled_entries"] >= 1  # beta's resting limit entry
            assert engaged.json()["kill_switch"] == {
                "engaged": True,
                "reason": "operator: flash crash",
                "engaged_at": engaged.json()["kill_switch"]["engaged_at"],
                "flatten": False,  # open positions keep their exits
            }
            health = (await api.client.get("/health")).json()
            assert health["kill_switch"]["engaged"] is True
            assert not any(bot["accepting_entries"] for bot in health["bots"])
            samples, _ = parse((await api.client.get("/metrics")).text)
            assert value(samples, "tradepipe_engine_kill_switch_engaged") == 1

            released = await api.client.delete("/api/kill-switch", headers=api.auth())
            assert released.status_code == 200
            assert released.json()["kill_switch"]["engaged"] is False
            assert (await api.client.get("/health")).json()["kill_switch"]["engaged"] is False

    aio.run(scenario())


def test_control_needs_the_right_token(aio: Aio, database_url: str, strategies_dir: Path) -> None:
    async def scenario() -> None:
        async with engine_api(database_url, strategies_dir) as api:
            for method, path, body in MUTATIONS:
                for headers in ({}, api.auth("wrong"), {"Authorization": TOKEN}):
                    response = await api.client.request(method, path, json=body, headers=headers)
                    assert response.status_code == 401, (method, path, headers)
                    assert response.headers["www-authenticate"] == "Bearer"
                    assert "error" in response.json()
                    assert TOKEN not in response.text
            assert api.running.engine.status().kill_switch.engaged is False
            right = await api.client.post(
                "/api/kill-switch", json={"reason": "t"}, headers=api.auth()
            )
            assert right.status_code == 200
            # reads stay open on loopback, with or without a token
            assert (await api.client.get("/api/bots")).status_code == 200

    aio.run(scenario())


def test_without_a_configured_token_control_is_refused(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    async def scenario() -> None:
        async with engine_api(database_url, strategies_dir, token=None) as api:
            for method, path, body in MUTATIONS:
                for headers in ({}, api.auth(), api.auth("other")):
                    response = await api.client.request(method, path, json=body, headers=headers)
                    assert response.status_code == 403, (method, path)
                    assert response.json() == {"error": NO_TOKEN_MESSAGE}
            assert (await api.client.get("/health")).status_code == 200
            assert (await api.client.get("/metrics")).status_code == 200
            assert api.running.engine.bot_status("alpha").enabled  # type: ignore[union-attr]

    aio.run(scenario())


def test_models_refresh_calls_the_hook_or_says_it_is_not_wired(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    calls: list[str | None] = []

    async def refresh(model_name: str | None) -> object:
        calls.append(model_name)
        if model_name == "broken":
            raise RuntimeError("registry unreachable")
        return {"swapped": 1}

    body = {"model_name": "btc_direction", "version": "7", "alias": "champion"}

    async def scenario() -> None:
        async with engine_api(database_url, strategies_dir, refresh_models=refresh) as api:
            response = await api.client.post("/api/models/refresh", json=body, headers=api.auth())
            assert response.status_code == 200, response.text
            assert response.json() == {
                "refreshed": "btc_direction",
                "alias": "champion",
                "result": {"swapped": 1},
            }
            assert calls == ["btc_direction"]
            failed = await api.client.post(
                "/api/models/refresh", json={"model_name": "broken"}, headers=api.auth()
            )
            assert failed.status_code == 502
            assert "registry unreachable" in failed.json()["error"]
        async with engine_api(database_url, strategies_dir) as api:
            response = await api.client.post("/api/models/refresh", json=body, headers=api.auth())
            assert response.status_code == 501
            assert "not wired" in response.json()["error"]

    aio.run(scenario())
