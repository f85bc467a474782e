"""The kernel's risk limits in a real engine (paper broker, SQLite) behind its real API on
loopback: a losing bot stops at its daily loss limit until 00:00 UTC and at its max
drawdown until an operator re-enables it; the event, /health and /api/bots say so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from live.notify.messages import engine_category
from tests.api.harness import Api, engine_api
from tests.api.promtext import parse
from tests.engine.helpers import START_MS, Aio, push, query, walk
from tradepipe.notifications import NotifyCategory
from tradepipe.risk import DAY_MS, utc_day

# a market that falls 0.1 % a second: every entry of `alpha` ("always") meets its stop
FALLING = (0.999,)
# the bot's stop at 0.05 % and no take-profit within reach: each trade loses ~0.3 quote
LOSING = {"stop_loss_pct": 0.05, "take_profit_pct": 5.0}


async def settle(api: Api) -> None:
    recorder = api.running.engine.recorder
    await recorder.wait_durable(recorder.last_submitted, 10)


def closed_net_pnl(url: str) -> list[float]:
    rows = query(url, "SELECT realised_pnl - fees AS net FROM positions WHERE status = 'closed'")
    return [row.net for row in rows]


def test_a_daily_loss_limit_stops_a_losing_bot_until_the_next_utc_day(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    seen: dict[str, Any] = {}
    before_midnight = START_MS + DAY_MS - 150_000  # 23:57:30 UTC
    trades = walk(400, start_ms=before_midnight, moves=FALLING)

    async def scenario() -> None:
        async with engine_api(database_url, strategies_dir) as api:
            engine = api.running.engine
            await api.client.post("/api/bots/beta/stop", headers=api.auth())
            changed = await api.client.patch(
                "/api/bots/alpha", json={**LOSING, "daily_loss_limit": 0.5}, headers=api.auth()
            )
            assert changed.status_code == 200, changed.text
            seen["bad_limit"] = await api.client.patch(
                "/api/bots/alpha", json={"daily_loss_limit": -1}, headers=api.auth()
            )
            while not engine.bus.recent("risk_limit_hit"):
                await push(api.running, [next(trades)])
                assert engine.core.clock.now_or(0) < START_MS + DAY_MS, "no stop before 00:00"
            await settle(api)
            seen["hit"] = engine.bus.recent("risk_limit_hit")
            seen["losses"] = closed_net_pnl(database_url)
            seen["health"] = (await api.client.get("/health", headers=api.auth())).json()
            seen["bot"] = (await api.client.get("/api/bots/alpha", headers=api.auth())).json()
            seen["metrics"] = (await api.client.get("/metrics", headers=api.auth())).text
            entries = engine.core.metrics.entries
            # until midnight (the market's clock), the strategy still asks; nothing enters
            while engine.core.clock.now_or(0) < START_MS + DAY_MS - 2_000:
                await push(api.running, [next(trades)])
            seen["entries_until_midnight"] = engine.core.metrics.entries - entries
            seen["refused"] = engine.core.metrics.entries_refused_risk
            await push(api.running, [next(trades) for _ in range(60)])  # a new UTC day
            await settle(api)
            seen["entries_next_day"] = engine.core.metrics.entries - entries
            seen["hits"] = engine.bus.recent("risk_limit_hit")
            seen["events"] = (
                await api.client.get(
                    "/api/events", params={"kind": "risk_limit_hit"}, headers=api.auth()
                )
            ).json()

    aio.run(scenario(), timeout=60)

    assert seen["bad_limit"].status_code == 422
    assert "daily_loss_limit" in seen["bad_limit"].json()["error"]
    [hit] = seen["hit"]
    assert hit.bot == "alpha" and hit.data["limit"] == "daily_loss_limit"
    figures = hit.data["figures"]
    assert figures["daily_loss_limit"] == 0.5 and figures["day_pnl"] <= -0.5
    assert hit.data["until_ms"] == START_MS + DAY_MS
    assert engine_category(hit) is NotifyCategory.ERRORS  # notified as an error
    # the day's loss is the realised net PnL of the positions closed that day
    losses = seen["losses"]
    assert losses and all(pnl < 0 for pnl in losses)
    assert figures["day_pnl"] == pytest.approx(sum(losses))
    for body in (seen["bot"], next(b for b in seen["health"]["bots"] if b["name"] == "alpha")):
        assert body["risk_halt"] == "daily_loss_limit"
        assert body["risk_halted_until_ms"] == START_MS + DAY_MS
        assert body["accepting_entries"] is False
        assert body["day_realised_pnl"] == figures["day_pnl"]
        assert body["open_positions"] == 0  # the losing position was closed by its stop
    samples, _ = parse(seen["metrics"])
    halted = [(labels, v) for name, labels, v in samples if name == "tradepipe_bot_risk_halted"]
    assert len(halted) == 1 and halted[0][0]["limit"] == "daily_loss_limit"
    assert halted[0][1] == 1 and halted[0][0]["bot"] == "alpha"
    assert seen["entries_until_midnight"] == 0 and seen["refused"] == 0  # blocked earlier
    assert seen["entries_next_day"] > 0
    # and the new day, as losing, stops again at its own limit
    first, later = seen["hits"]  # oldest first
    assert first.data == hit.data and later.data["until_ms"] == START_MS + 2 * DAY_MS
    recorded = seen["events"]["events"]
    assert [event["kind"] for event in recorded] == ["risk_limit_hit"] * 2
    assert utc_day(before_midnight) == utc_day(START_MS)


def test_a_max_drawdown_disables_a_losing_bot_until_an_operator_re_enables_it(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    seen: dict[str, Any] = {}
    trades = walk(600, moves=FALLING)

    async def scenario() -> None:
        async with engine_api(database_url, strategies_dir) as api:
            engine = api.running.engine
            await api.client.post("/api/bots/beta/stop", headers=api.auth())
            # base capital 100 (100 per trade, one position): 0.5 % is 0.5 quote
            changed = await api.client.patch(
                "/api/bots/alpha", json={**LOSING, "max_drawdown_pct": 0.5}, headers=api.auth()
            )
            assert changed.status_code == 200, changed.text
            while not engine.bus.recent("risk_limit_hit"):
                await push(api.running, [next(trades)])
            seen["hit"] = engine.bus.recent("risk_limit_hit")
            seen["bot"] = (await api.client.get("/api/bots/alpha", headers=api.auth())).json()
            await settle(api)
            await engine.poll_bots()  # the engine's own write disabled the bot in the table
            await settle(api)
            seen["table"] = query(
                database_url, "SELECT enabled, status, last_error FROM bots WHERE name='alpha'"
            )
            seen["health"] = (await api.client.get("/health", headers=api.auth())).json()
            entries = engine.core.metrics.entries
            await push(api.running, [next(trades) for _ in range(30)])
            seen["entries_while_stopped"] = engine.core.metrics.entries - entries
            started = await api.client.post("/api/bots/alpha/start", headers=api.auth())
            seen["started"] = started.json()
            seen["rearmed"] = engine.bus.recent("risk_rearmed")
            for _ in range(300):  # its features warm up again first
                await push(api.running, [next(trades)])
                if engine.core.metrics.entries > entries:
                    break
            seen["entries_after"] = engine.core.metrics.entries - entries

    aio.run(scenario(), timeout=60)

    [hit] = seen["hit"]
    assert hit.data["limit"] == "max_drawdown_pct" and hit.data["until_ms"] is None
    assert hit.data["figures"]["drawdown_pct"] >= 0.5
    assert "operator re-enables" in hit.message
    bot = seen["bot"]
    assert bot["risk_halt"] == "max_drawdown_pct" and bot["risk_halted_until_ms"] is None
    assert bot["accepting_entries"] is False
    # disabled in the table, saying why; flat, it leaves the engine until re-enabled
    [row] = seen["table"]
    assert not row.enabled and row.status == "stopped"
    assert "max drawdown hit" in row.last_error
    assert "alpha" not in [b["name"] for b in seen["health"]["bots"]]
    assert seen["entries_while_stopped"] == 0
    assert seen["rearmed"]
    assert seen["started"]["enabled"] is True
    assert seen["started"]["status"]["risk_halt"] is None
    assert seen["entries_after"] > 0


def test_exposure_caps_refuse_entries_across_bots(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    seen: dict[str, Any] = {"most_open": 0}

    async def scenario() -> None:
        # alpha enters at market, beta rests limit entries below it: 100 each
        async with engine_api(database_url, strategies_dir, max_total_exposure=150.0) as api:
            engine = api.running.engine
            for trade in walk(150):
                await push(api.running, [trade])
                open_now = sum(len(bot.book.positions) for bot in engine.core.bots.values())
                seen["most_open"] = max(seen["most_open"], open_now)
            seen["refused_total"] = engine.core.metrics.entries_refused_risk
            seen["entries"] = engine.core.metrics.entries
            changed = await api.client.patch(
                "/api/bots/alpha", json={"max_symbol_exposure": 50.0}, headers=api.auth()
            )
            assert changed.status_code == 200, changed.text
            alpha = engine.core.bots["alpha"]
            before = alpha.entries
            for trade in walk(100, start_ms=START_MS + 150_000, first_id=151):
                await push(api.running, [trade])
            seen["alpha_entries_capped"] = alpha.entries - before

    aio.run(scenario(), timeout=60)

    assert seen["entries"] > 2 and seen["refused_total"] > 0
    assert seen["most_open"] == 1  # a second 100 would pass the engine's 150
    assert seen["alpha_entries_capped"] == 0  # 100 > its symbol's 50
