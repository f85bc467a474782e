"""A challenger in shadow: the engine trades the loopback replay with a champion while the
model's challenger (promoted to shadow) decides on the same rows through its own book and a
private paper venue. Its positions are in `shadow_runs` / `shadow_positions`; the broker,
the orders and the positions tables only ever see the champion's."""

from __future__ import annotations

import json
from pathlib import Path

from live.brokers import BrokerOrder, PaperBroker
from live.engine import build_engine
from live.engine.journal import write_from_dict, write_to_dict
from live.engine.model_watcher import ModelWatcher
from live.engine.persistence import ShadowWrite
from live.feeds import BinanceFeed
from live.replay import ReplayServer, SyntheticSource
from tests.engine.helpers import Aio, MarketTimes, add_bots, config_for, query, replay_to_the_end
from tests.engine.model_store import ModelStore
from tests.engine.test_evidence import SPEED, WINDOW_START_MS
from tests.support import feed_config
from tradepipe.db import create_engine_for, list_shadow_runs, session_scope
from tradepipe.db.shadow import ShadowPositionRecord, ShadowRecord
from tradepipe.registry import CHALLENGER, SHADOW_STARTED_TAG

MODEL = "shadow_test_model"


class RecordingPaper(PaperBroker):
    """The engine's broker, noting every order it is asked to place."""

    def __init__(self) -> None:
        super().__init__()
        self.placed: list[str] = []

    async def place(self, order: BrokerOrder) -> None:
        self.placed.append(order.client_order_id)
        await super().place(order)


WINDOW_MS = 600_000
BARRIERS = {"take_profit_pct": 0.05, "stop_loss_pct": 0.05, "max_holding_seconds": 30.0}


def test_a_challenger_runs_in_shadow_and_never_reaches_the_broker(
    aio: Aio, database_url: str, strategies_dir: Path, model_store: ModelStore
) -> None:
    champion = model_store.register(MODEL)
    challenger = model_store.register(MODEL, seed=2, champion=False)
    model_store.registry.tag_version(MODEL, challenger, {SHADOW_STARTED_TAG: "2024-01-01"})
    add_bots(
        database_url,
        strategies_dir,
        [("lgbm", "lgbm_threshold")],
        model_name=MODEL,
        confidence_threshold=0.01,
        timeframe="5s",
        **BARRIERS,
    )
    end_ms = WINDOW_START_MS + WINDOW_MS
    source = MarketTimes(SyntheticSource(["BTCUSDT"], start_ms=WINDOW_START_MS, end_ms=end_ms))

    broker = RecordingPaper()

    async def scenario() -> int:
        async with ReplayServer(source, speed=SPEED, wait_for_subscribers=2) as replay:
            config = config_for(
                database_url,
                strategies_dir,
                rest_url=replay.rest_url,
                mlflow_tracking_uri=model_store.tracking_uri,
            )
            engine = build_engine(config, feed=BinanceFeed(feed_config(replay.url)), broker=broker)
            await engine.start()
            try:
                slot = engine.watcher.slots[(MODEL, CHALLENGER)]
                await aio.eventually(
                    lambda: (
                        getattr(engine.bot_status("lgbm"), "model_version", None) == champion
                        and slot.active is not None
                    ),
                    "the champion and the challenger to load",
                    60,  # the first check waits for the model check process to start
                )
                assert slot.active is not None and slot.active.version == challenger
                await replay_to_the_end(aio, replay, 60)
                await aio.eventually(lambda: engine.recorder.pending == 0, "writes")
                [run] = engine.core.shadows.bots["lgbm"]
                assert run.orders_sent > 0 and run.version == challenger
                return run.orders_sent
            finally:
                await engine.stop()

    shadow_orders = aio.run(scenario(), timeout=180)
    versions = query(database_url, "SELECT DISTINCT model_version FROM orders")
    assert {row.model_version for row in versions} == {champion}
    orders = query(database_url, "SELECT client_order_id FROM orders")
    # the broker was asked to place the champion's orders, and nothing else
    assert sorted(broker.placed) == sorted(row.client_order_id for row in orders)
    [fills] = query(database_url, "SELECT count(*) AS n FROM fills")
    assert fills.n == broker.fills > 0
    db = create_engine_for(database_url)
    with session_scope(db) as session:
        [run] = list_shadow_runs(session, model_name=MODEL)
    db.dispose()
    assert run.bot_name == "lgbm" and run.model_version == challenger
    assert run.decisions > 0 and run.entries > 0 and run.strategy_hash
    assert run.closed_positions > 0 and shadow_orders >= run.entries
    positions = query(
        database_url,
        "SELECT status, exit_reason, fees, entry_price FROM shadow_positions ORDER BY seq",
    )
    closed = [p for p in positions if p.status == "closed"]
    assert closed and all(p.exit_reason and p.fees > 0 and p.entry_price for p in closed)
    kinds = {r.kind for r in query(database_url, "SELECT kind FROM events")}
    assert "shadow_started" in kinds


def test_only_a_challenger_promoted_to_shadow_is_watched(aio: Aio, model_store: ModelStore) -> None:
    """The watcher's shadow slot holds a challenger tagged by a shadow promotion only (a
    version merely registered as challenger is not vetted), and lets it go with the alias."""
    name = "shadow_watch_model"
    model_store.register(name)
    unvetted = model_store.register(name, seed=2, champion=False)
    swaps: list[str] = []
    watcher = ModelWatcher(
        lambda: model_store.registry,
        sample=lambda slot: [],
        on_swap=lambda slot, previous: swaps.append(slot.ref),
        on_refused=lambda slot, version, reason: None,
        timeout_seconds=30,
    )

    async def scenario() -> list[str | None]:
        slot = watcher.slot(name, CHALLENGER, shadow=True)
        seen: list[str | None] = []
        await watcher.poll_slot(slot)
        seen.append(slot.active.version if slot.active else None)
        model_store.registry.start_shadow(name, unvetted)
        await watcher.poll_slot(slot)
        seen.append(slot.active.version if slot.active else None)
        model_store.registry.remove_challenger(name)
        await watcher.poll_slot(slot)
        seen.append(slot.active.version if slot.active else None)
        return seen

    assert aio.run(scenario(), timeout=60) == [None, unvetted, None]
    assert swaps == [f"{name}@{CHALLENGER}"]


def test_a_shadow_write_survives_the_write_journal() -> None:
    """A shadow write the database could not take is journaled and replayed like any other."""
    position = ShadowPositionRecord(
        3, "buy", "closed", 0.5, 100.0, 100.7, 1_000, 2_000, 9_000, "take_profit", 0.1, 0.35
    )
    write = ShadowWrite(
        ShadowRecord("lgbm", MODEL, "2", "BTCUSDT", "hash", 1_000, 9_000, 40, 1, (position,))
    )
    assert write_from_dict(json.loads(json.dumps(write_to_dict(write)))) == write
