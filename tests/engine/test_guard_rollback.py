"""The guarded champion: a real engine trades a loopback replay whose regime flips (the
price climbs, then falls) with champion version 2 and guard rails on it; version 1 was the
champion before. The champion's live precision (take-profits of its entries) collapses
after the flip; the guard rolls it back to version 1 having judged no more matured outcomes
than its evidence budget (and all those after the flip among them), the bots swap at once,
a webhook receiver hears the breach, and the evidence is in MLflow and the database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from live.engine import Engine, build_engine
from live.engine.status import BotRunState, BotStatusView
from live.feeds import BinanceFeed
from live.replay import ReplayServer
from live.replay.sources import ReplayMessage, trade_message
from tests.engine.helpers import (
    Aio,
    add_bots,
    champion_loaded,
    config_for,
    market_started,
    push,
    query,
    start_engine,
    walk,
)
from tests.engine.model_store import ModelStore
from tests.engine.test_evidence import WINDOW_START_MS, recording
from tests.engine.test_quality import log_reference
from tests.notify.harness import hub_for, servers, set_secrets
from tests.notify.servers import WebhookServer
from tests.support import feed_config
from tradepipe import model_ops
from tradepipe.db import create_engine_for, session_scope
from tradepipe.domain import Side, Trade
from tradepipe.guard import GUARD_RAILS_TAG, GuardRails
from tradepipe.quality import build_reference

MODEL = "guard_decay_model"
SPEED = 200
TRADE_MS = 250
CLIMB_MS = 900_000  # 15 minutes of climbing market, then it falls
FALL_MS = 600_000
# After the flip the replay plays 20 times slower (market time is unchanged): the guard
# then refreshes many times while the judged window still reaches back before the flip,
# however long a refresh takes on a busy machine.
SLOW_AFTER_FLIP = 20
FLIP_MS = WINDOW_START_MS + CLIMB_MS
STEP = 0.00002  # per trade: 0.008 %/s, the 0.05 % barriers are reached in about 6 s
BARRIERS = {"take_profit_pct": 0.05, "stop_loss_pct": 0.05, "max_holding_seconds": 30.0}
RAILS = GuardRails(min_outcomes=20, budget_outcomes=40, precision_margin=0.1, alpha=0.05)


class RegimeFlip:
    """Trades every TRADE_MS: the price climbs for CLIMB_MS (every long entry reaches its
    take-profit), then falls for FALL_MS (every one reaches its stop-loss), paced
    SLOW_AFTER_FLIP times slower."""

    description = "a market that climbs, then falls"
    symbols = frozenset({"BTCUSDT"})

    def messages(self, wall_start_ns: int, speed: float) -> Iterator[ReplayMessage]:
        price = 30_000.0
        for index in range((CLIMB_MS + FALL_MS) // TRADE_MS):
            time_ms = WINDOW_START_MS + index * TRADE_MS
            price *= 1 + STEP if time_ms < FLIP_MS else 1 - STEP
            side = Side.BUY if index % 2 else Side.SELL
            trade = Trade("BTCUSDT", time_ms, round(price, 2), 0.01, side, index + 1)
            after = max(0, time_ms - FLIP_MS)
            offset_ns = (time_ms - WINDOW_START_MS + after * (SLOW_AFTER_FLIP - 1)) * 1_000_000
            yield ReplayMessage(offset_ns, "btcusdt@trade", trade_message(trade), trade)


def guarded_champion(store: ModelStore) -> tuple[str, str]:
    """Version 1 champion, then version 2 champion with guard rails and a validation
    precision of 0.6 (its entries won 60 % of the time at validation)."""
    first = store.register(MODEL, seed=1)
    second = store.register(MODEL, seed=2)
    store.registry.tag_version(MODEL, second, {GUARD_RAILS_TAG: RAILS.to_tag()})
    model = store.registry.load(MODEL, version=second)
    rng = np.random.default_rng(3)
    names = list(model.feature_names)
    rows = pd.DataFrame(rng.normal(size=(500, len(names))), columns=names)
    labels = np.arange(500) % 5 < 3  # 60 % take-profits
    log_reference(store, second, build_reference(rows, labels, np.full(500, 0.9), 0.01), MODEL)
    return first, second


def test_a_decaying_champion_is_rolled_back(
    aio: Aio,
    tmp_path: Path,
    database_url: str,
    strategies_dir: Path,
    model_store: ModelStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_secrets(monkeypatch)
    first, second = guarded_champion(model_store)
    add_bots(database_url, strategies_dir, [("lgbm", "lgbm_threshold")], model_name=MODEL,
             confidence_threshold=0.01, timeframe="5s", notifiers=["hook"],
             notify_events=["model_swaps"], **BARRIERS)  # fmt: skip
    telegram, webhook = servers()

    async def scenario() -> Engine:
        async with telegram, webhook, ReplayServer(
            RegimeFlip(), speed=SPEED, wait_for_subscribers=2
        ) as replay:  # fmt: skip
            config = config_for(
                database_url,
                strategies_dir,
                rest_url=replay.rest_url,
                mlflow_tracking_uri=model_store.tracking_uri,
                quality_seconds=0.2,
                quality_window_seconds=3600,
                **recording(tmp_path),
            )
            feed = BinanceFeed(feed_config(replay.url))
            engine = build_engine(config, feed=feed, notifications=hub_for(telegram, webhook))
            await engine.start()
            try:
                await champion_loaded(aio, engine, second, "lgbm", timeout=60)
                async with market_started(replay):
                    await aio.eventually(
                        lambda: getattr(engine.bot_status("lgbm"), "model_version", None) == first,
                        "the guard to roll the champion back and the bot to swap",
                        60,
                    )
                await aio.eventually(
                    lambda: (
                        {"model_guard_breached", "model_swapped"}
                        <= {m["kind"] for m in webhook.received}
                    ),
                    "the webhook to hear the breach and the swap",
                )
            finally:
                await engine.stop()
            return engine

    engine = aio.run(scenario(), timeout=180)
    assert_one_breach_with_its_evidence(engine, webhook, first, second)
    assert_mlflow_has_the_rollback(model_store, first, second)
    assert_the_database_has_the_rollback(database_url, first)


def assert_one_breach_with_its_evidence(
    engine: Engine, webhook: WebhookServer, first: str, second: str
) -> None:
    """The breach event, once, with the precision rail's evidence; the webhook heard it."""
    assert engine.metrics()["guard_breaches_total"] == 1  # once, not at every refresh
    [breached] = [e for e in engine.bus.recent() if e.kind == "model_guard_breached"]
    evidence = breached.data
    assert evidence["outcome"] == "rolled_back" and evidence["rolled_back_to"] == first
    assert evidence["version"] == second and evidence["bots"] == ["lgbm"]
    [breach] = evidence["breaches"]
    assert breach["rail"] == "precision" and breach["test"] == "one-sided exact binomial test"
    assert breach["p_value"] < RAILS.alpha and breach["limit"] == pytest.approx(0.5)
    # the evidence budget: at most budget_outcomes matured outcomes judged, and the judged
    # window still reaches back before the flip, so every matured outcome after the flip
    # was among them: the decay was caught within the budget
    assert RAILS.min_outcomes <= evidence["judged_outcomes"] <= RAILS.budget_outcomes
    assert evidence["judged_from_ms"] < FLIP_MS <= evidence["judged_to_ms"]
    assert breach["outcomes"] - breach["successes"] <= RAILS.budget_outcomes
    hook = next(m for m in webhook.received if m["kind"] == "model_guard_breached")
    assert hook["category"] == "model_swaps" and "rolled back to version" in hook["text"]


def assert_mlflow_has_the_rollback(model_store: ModelStore, first: str, second: str) -> None:
    """MLflow: the alias is back on version 1, the evidence is on version 2."""
    registry = model_store.registry
    champion = registry.champion(MODEL)
    assert champion is not None and champion.version == first
    tags = registry.version(MODEL, second).tags
    assert tags["rolled_back_by"] == "guard" and "guard_breached_at" in tags
    assert json.loads(tags["guard_evidence"])["breaches"][0]["rail"] == "precision"
    assert tags["rollback_reason"].startswith("guard: live precision")


def assert_the_database_has_the_rollback(database_url: str, first: str) -> None:
    """The database: the promotion record of the rollback and both events."""
    [promotion] = query(
        database_url,
        "SELECT version, reasons FROM model_promotions WHERE model_name = :name",
        name=MODEL,
    )
    assert promotion.version == first
    reasons = (
        promotion.reasons if isinstance(promotion.reasons, dict) else json.loads(promotion.reasons)
    )
    assert reasons["operator"]["by"] == "guard" and reasons["operator"]["action"] == "rollback"
    kinds = {row.kind for row in query(database_url, "SELECT kind FROM events")}
    assert {"model_guard_breached", "model_rolled_back", "model_swapped"} <= kinds


ALONE, PINNED = "guard_alone_model", "guard_pinned_model"


def guarded(store: ModelStore, name: str, seed: int) -> str:
    """A new champion version of `name` with RAILS and a validation precision of 0.6."""
    version = store.register(name, seed=seed)
    store.registry.tag_version(name, version, {GUARD_RAILS_TAG: RAILS.to_tag()})
    model = store.registry.load(name, version=version)
    names = list(model.feature_names)
    rows = pd.DataFrame(np.random.default_rng(seed).normal(size=(500, len(names))), columns=names)
    labels = np.arange(500) % 5 < 3
    log_reference(store, version, build_reference(rows, labels, np.full(500, 0.9), 0.01), name)
    return version


def test_no_earlier_champion_stops_entries_and_a_pinned_one_stays(
    database_url: str, strategies_dir: Path, model_store: ModelStore, tmp_path: Path
) -> None:
    """Both champions decay on a falling market: the one with no earlier champion stays
    where it is and its bot stops entering (model_guarded); the pinned one is not moved and
    its bot trades on; both breaches are events with their outcome."""
    alone = guarded(model_store, ALONE, seed=4)
    model_store.register(PINNED, seed=5)
    pinned = guarded(model_store, PINNED, seed=6)
    engine_db = create_engine_for(database_url)
    with session_scope(engine_db) as session:
        model_ops.pin(model_store.registry, PINNED, by="test", reason="audit", session=session)
    engine_db.dispose()
    for bot, name in (("alone", ALONE), ("pinned", PINNED)):
        add_bots(database_url, strategies_dir, [(bot, "lgbm_threshold")], model_name=name,
                 confidence_threshold=0.01, timeframe="5s", **BARRIERS)  # fmt: skip
    falling = list(walk(1600, step_ms=TRADE_MS, price=30_000.0, moves=[1 - STEP]))

    async def scenario() -> tuple[Engine, int, list[BotStatusView | None]]:
        config = config_for(
            database_url,
            strategies_dir,
            mlflow_tracking_uri=model_store.tracking_uri,
            quality_seconds=0.2,
            quality_window_seconds=3600,
            **recording(tmp_path),
        )
        running = await start_engine(config)
        engine = running.engine
        try:
            await Aio.eventually(
                lambda: {getattr(engine.bot_status(b), "model_version", None)
                         for b in ("alone", "pinned")} == {alone, pinned},
                "both champions to load",
                60,  # the model check process starts first, then checks two models
            )  # fmt: skip
            await push(running, falling[:1200])
            await Aio.eventually(
                lambda: (
                    len([e for e in engine.bus.recent() if e.kind == "model_guard_breached"]) == 2
                ),
                "both breaches",
                30,
            )
            entries = engine.core.bots["alone"].entries
            await push(running, falling[1200:])  # a guarded bot enters no more
            return engine, entries, [engine.bot_status(b) for b in ("alone", "pinned")]
        finally:
            await engine.stop()

    engine, entries, (guarded_bot, pinned_bot) = Aio.run(scenario(), timeout=120)
    outcomes = {
        e.data["model"]: e.data["outcome"]
        for e in engine.bus.recent()
        if e.kind == "model_guard_breached"
    }
    assert outcomes == {ALONE: "no_earlier_champion", PINNED: "pinned"}
    assert engine.core.bots["alone"].entries == entries
    for name, version in ((ALONE, alone), (PINNED, pinned)):
        champion = model_store.registry.champion(name)
        assert champion is not None and champion.version == version  # nothing moved
        assert "guard_breached_at" in model_store.registry.version(name, version).tags
    assert guarded_bot is not None and guarded_bot.state is BotRunState.MODEL_GUARDED
    assert not guarded_bot.accepting_entries and guarded_bot.model_version == alone
    assert guarded_bot.last_error is not None
    assert "breached its guard rails" in guarded_bot.last_error
    assert pinned_bot is not None and pinned_bot.state is BotRunState.RUNNING
    kinds = [row.kind for row in query(database_url, "SELECT kind FROM events")]
    assert kinds.count("model_guard_breached") == 2 and "model_rolled_back" not in kinds
