"""The engine records what it saw: the candles it built (1 s and every bot timeframe) in the
candle store as exchange binance-live, equal to the candles it built and to a batch
aggregation of the same trades; one decision log row per bot decision with the model
version, the probability the model gives on the recorded features, and the strategy hash;
every strategy version's source readable by hash. A full queue drops and counts without
holding up trading; a writer that cannot write is an event and trading goes on."""

from __future__ import annotations

import asyncio
import fcntl
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest

from live.engine import EngineConfig, EngineEvent, build_engine
from live.engine.evidence import EvidenceRecorder
from live.feeds import BinanceFeed
from live.replay import ReplayServer, SyntheticSource
from tests.engine.helpers import (
    START_MS,
    Aio,
    MarketTimes,
    add_bots,
    champion_loaded,
    config_for,
    push,
    query,
    replay_to_the_end,
    start_engine,
    walk,
)
from tests.engine.model_store import ModelStore
from tests.support import feed_config
from tradepipe.candles import aggregate_trades, candles_to_frame, resample_candles
from tradepipe.config import ConfigError, load_settings
from tradepipe.db import create_engine_for, session_scope, strategy_source
from tradepipe.domain import Candle
from tradepipe.marketdata import MarketDataStore
from tradepipe.marketdata.decisions import decision_days, feature_frame, read_decisions
from tradepipe.registry import ModelRegistry
from tradepipe.strategy import content_hash, load_strategy_source
from tradepipe.synthetic import SyntheticMarket
from tradepipe.timeframes import ONE_SECOND

MODEL = "btcusdt_1m_triple_barrier"  # the model lgbm_threshold declares
WINDOW_START_MS = START_MS + 3_600_000
WINDOW_MS = 600_000
SPEED = 200
LIVE = "binance-live"


def recording(tmp_path: Path, **changes: object) -> dict[str, object]:
    values: dict[str, object] = {
        "record_candles": True,
        "record_decisions": True,
        "market_data_dir": tmp_path / "market_data",
        "decision_log_dir": tmp_path / "decisions",
        "evidence_flush_seconds": 0.05,
    }
    values.update(changes)
    return values


def sources_of(url: str, *hashes: str) -> dict[str, bytes | None]:
    engine = create_engine_for(url)
    try:
        with session_scope(engine) as session:
            return {digest: strategy_source(session, digest) for digest in hashes}
    finally:
        engine.dispose()


def test_recorded_candles_and_decisions_are_what_the_engine_saw(
    aio: Aio, tmp_path: Path, database_url: str, strategies_dir: Path, model_store: ModelStore
) -> None:
    version = model_store.register(MODEL)
    add_bots(database_url, strategies_dir, [("ema", "ema_rsi")], timeframe="15s")
    add_bots(
        database_url,
        strategies_dir,
        [("lgbm", "lgbm_threshold")],
        confidence_threshold=0.01,
        timeframe="5s",
    )
    add_bots(database_url, strategies_dir, [("always", "always")])
    seen = aio.run(
        trade_the_window(aio, tmp_path, database_url, strategies_dir, model_store, version),
        timeout=90,
    )
    assert_the_recorded_candles_are_the_built_ones(tmp_path, seen)
    hashes = {
        name: content_hash((strategies_dir / f"{name}.py").read_bytes())
        for name in ("ema_rsi", "lgbm_threshold", "always")
    }
    assert_one_decision_row_per_decision(tmp_path, seen, hashes, model_store, version)
    kept = sources_of(database_url, *hashes.values())
    for name, digest in hashes.items():
        source = kept[digest]
        assert source == (strategies_dir / f"{name}.py").read_bytes()
        again = load_strategy_source(source, tmp_path / f"{name}.py")  # re-runnable
        assert again.content_hash == digest


@dataclass
class WhatTheEngineSaw:
    """Taken from the running engine, to compare with what it recorded."""

    seconds: list[Candle] = field(default_factory=list)  # the 1 s candles it built
    built: dict[str, pd.DataFrame] = field(default_factory=dict)  # its 5 s and 15 s history
    counts: dict[str, int] = field(default_factory=dict)  # decisions and entries per bot
    configs: dict[str, dict[str, object]] = field(default_factory=dict)
    streams: dict[str, tuple[float, ...]] = field(default_factory=dict)  # last feature rows
    metrics: dict[str, float] = field(default_factory=dict)


async def trade_the_window(
    aio: Aio,
    tmp_path: Path,
    database_url: str,
    strategies_dir: Path,
    model_store: ModelStore,
    version: str,
) -> WhatTheEngineSaw:
    """The window replayed once the champion is loaded, with recording on."""
    end_ms = WINDOW_START_MS + WINDOW_MS
    source = MarketTimes(SyntheticSource(["BTCUSDT"], start_ms=WINDOW_START_MS, end_ms=end_ms))
    seen = WhatTheEngineSaw()
    async with ReplayServer(source, speed=SPEED, wait_for_subscribers=2) as replay:
        config = config_for(
            database_url,
            strategies_dir,
            rest_url=replay.rest_url,
            mlflow_tracking_uri=model_store.tracking_uri,
            **recording(tmp_path),
        )
        engine = build_engine(config, feed=BinanceFeed(feed_config(replay.url)))
        engine.add_candle_listener(seen.seconds.append)
        await engine.start()
        try:
            await champion_loaded(aio, engine, version, "lgbm")
            await replay_to_the_end(aio, replay)
            await aio.eventually(
                lambda: bool(seen.seconds) and seen.seconds[-1].end_ms >= end_ms - 1_000,
                "the last 1 s",
            )
            pipeline = engine.core.symbols["BTCUSDT"]
            for name in ("5s", "15s"):
                seen.built[name] = candles_to_frame(pipeline.timeframes[name].history)
            for name in ("ema", "lgbm", "always"):
                bot = engine.core.bots[name]
                seen.counts[name], seen.counts[f"{name}_entries"] = bot.decisions, bot.entries
                seen.configs[name] = bot.row.config.model_dump(mode="json")
                if bot.features is not None and bot.features.last_row is not None:
                    seen.streams[name] = bot.features.last_row
        finally:
            await engine.stop()
        seen.metrics.update(engine.metrics())
    return seen


def assert_the_recorded_candles_are_the_built_ones(tmp_path: Path, seen: WhatTheEngineSaw) -> None:
    """1 s, 5 s and 15 s candles in the store equal the engine's and a batch aggregation's."""
    end_ms = WINDOW_START_MS + WINDOW_MS
    store = MarketDataStore(tmp_path / "market_data")
    trades = SyntheticMarket("BTCUSDT").trades(WINDOW_START_MS, end_ms)
    batch_seconds = aggregate_trades(trades, "1s")

    recorded = store.read_candles(LIVE, "BTCUSDT", "1s")
    assert recorded.equals(candles_to_frame(seen.seconds))  # what the engine built, bit for bit
    assert len(recorded) >= len(batch_seconds) - 1  # at most the last second still open
    assert recorded.equals(batch_seconds.head(len(recorded)))  # and what a batch builds
    for name in ("5s", "15s"):
        frame = store.read_candles(LIVE, "BTCUSDT", name)
        assert len(frame) >= 10 and frame.equals(
            seen.built[name].tail(len(frame)).reset_index(drop=True)
        )
        batch = resample_candles(batch_seconds, name)
        first = batch.index[batch["start_ms"] == frame["start_ms"].iloc[0]][0]
        assert frame.equals(batch.iloc[first : first + len(frame)].reset_index(drop=True))
    assert store.row_count("binance", "BTCUSDT", "1s") == 0  # its own series only
    assert seen.metrics["evidence_candles_total"] == sum(
        store.row_count(LIVE, "BTCUSDT", tf) for tf in ("1s", "5s", "15s")
    )
    assert seen.metrics["evidence_dropped_total"] == seen.metrics["evidence_lost_total"] == 0


def assert_one_decision_row_per_decision(
    tmp_path: Path,
    seen: WhatTheEngineSaw,
    hashes: dict[str, str],
    model_store: ModelStore,
    version: str,
) -> None:
    """Each decision logged once with its strategy hash and config; the model bot's rows
    carry the version, the features the engine computed and the model's probability."""
    decisions = read_decisions(tmp_path / "decisions")
    assert seen.metrics["evidence_decisions_total"] == len(decisions)
    for bot, strategy in (("ema", "ema_rsi"), ("lgbm", "lgbm_threshold"), ("always", "always")):
        rows = decisions[decisions["bot"] == bot]
        assert len(rows) == seen.counts[bot] > 0  # one row per decision the bot took
        assert set(rows["strategy_hash"]) == {hashes[strategy]}
        assert [json.loads(text) for text in set(rows["bot_config"])] == [seen.configs[bot]]
        assert rows["candle_start_ms"].is_unique
        assert (rows["entry"] == "placed").sum() == seen.counts[f"{bot}_entries"]
    assert set(decisions[decisions["bot"] == "ema"]["timeframe"]) == {"15s"}
    assert decisions[decisions["bot"] != "lgbm"]["model_version"].isna().all()

    model_rows = decisions[decisions["bot"] == "lgbm"]
    assert set(model_rows["model_version"]) == {version}
    assert set(model_rows["model"]) == {MODEL}
    model = ModelRegistry(model_store.tracking_uri).load(MODEL, version=version)
    features = feature_frame(model_rows)
    pipeline_stream = seen.streams["lgbm"]
    assert features.iloc[-1].tolist() == list(pipeline_stream)  # the engine's last row
    # the probability recorded is the one the model gives on the features recorded
    assert list(model.predict_proba(features)) == list(model_rows["probability"])


def test_an_edited_strategy_keeps_every_version_by_hash(
    aio: Aio, tmp_path: Path, database_url: str, strategies_dir: Path
) -> None:
    add_bots(database_url, strategies_dir, [("c", "counting")])
    path = strategies_dir / "counting.py"
    first = path.read_bytes()
    second = first.replace(b'reason=f"n={self.seen}"', b'reason=f"seen {self.seen}"')

    async def scenario() -> None:
        running = await start_engine(
            config_for(database_url, strategies_dir, **recording(tmp_path))
        )
        engine = running.engine
        try:
            await push(running, walk(50))  # past the warm-up: the first version decides
            path.write_bytes(second)
            await aio.eventually(
                lambda: engine.core.bots["c"].strategy_hash == content_hash(second), "the reload"
            )
            await push(running, walk(30, start_ms=START_MS + 50_000, first_id=51))
            await aio.eventually(lambda: engine.recorder.pending == 0, "writes")
        finally:
            await engine.stop()

    aio.run(scenario())
    kept = sources_of(database_url, content_hash(first), content_hash(second))
    assert kept == {content_hash(first): first, content_hash(second): second}
    assert sources_of(database_url, "0" * 64) == {"0" * 64: None}
    decisions = read_decisions(tmp_path / "decisions", bots=["c"])
    assert set(decisions["strategy_hash"]) == {content_hash(first), content_hash(second)}
    newer = decisions[decisions["strategy_hash"] == content_hash(second)]
    reasons = set(newer[newer["decision"] == "enter"]["reason"])
    assert reasons and all(reason.startswith("seen ") for reason in reasons)


def test_a_full_queue_drops_and_counts_and_trading_goes_on(
    aio: Aio, tmp_path: Path, database_url: str, strategies_dir: Path
) -> None:
    add_bots(database_url, strategies_dir, [("always", "always")])
    store = MarketDataStore(tmp_path / "market_data")
    series = store.series_dir(LIVE, "BTCUSDT", "1s")
    series.mkdir(parents=True)
    result: dict[str, float] = {}

    async def scenario() -> None:
        config = config_for(
            database_url,
            strategies_dir,
            **recording(tmp_path, record_decisions=False, evidence_queue_size=10),
        )
        running = await start_engine(config)
        engine = running.engine
        try:
            # Another writer of the series holds its lock: the evidence writer waits on it,
            # its queue fills, and the engine must not wait with it.
            with (series / ".lock").open("a") as lock:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
                started = time.monotonic()
                await push(running, walk(150))
                pushing = time.monotonic() - started
                await aio.eventually(lambda: engine.evidence.dropped > 0, "drops")
                result["held_seconds"] = engine.core.metrics.seconds
                result["held_entries"] = engine.core.bots["always"].entries
                result["dropped_while_held"] = engine.metrics()["evidence_dropped_total"]
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
            result["pushing"] = pushing
            await push(running, walk(20, start_ms=START_MS + 150_000, first_id=151))
            await asyncio.sleep(0.3)  # past the close grace: the last seconds close
        finally:
            await engine.stop()
        result.update(engine.metrics())

    aio.run(scenario())
    assert result["held_seconds"] >= 145  # the engine kept building candles meanwhile
    assert result["held_entries"] > 0  # and trading
    assert result["dropped_while_held"] > 0
    written = store.row_count(LIVE, "BTCUSDT", "1s")
    # every candle built is either written or counted as dropped: nothing vanishes unseen
    assert written + result["evidence_dropped_total"] == result["second_candles_total"]
    assert written == result["evidence_candles_total"] > 0
    assert result["evidence_lost_total"] == 0


def test_a_writer_that_cannot_write_is_an_event_and_trading_goes_on(
    aio: Aio, tmp_path: Path, database_url: str, strategies_dir: Path
) -> None:
    add_bots(database_url, strategies_dir, [("always", "always")])
    blocked = tmp_path / "not a folder"
    blocked.write_text("a file where the candle store should be")
    events: list[EngineEvent] = []
    result: dict[str, float] = {}

    async def scenario() -> None:
        config = config_for(
            database_url, strategies_dir, **recording(tmp_path, market_data_dir=blocked)
        )
        running = await start_engine(config)
        engine = running.engine
        engine.bus.subscribe(events.append)
        try:
            await push(running, walk(20))
            await aio.eventually(
                lambda: any(e.kind == "evidence_write_failed" for e in events), "the event"
            )
            entries = engine.core.bots["always"].entries
            await push(running, walk(40, start_ms=START_MS + 20_000, first_id=21))
            await aio.eventually(lambda: engine.core.bots["always"].entries > entries, "trading")
            await aio.eventually(lambda: engine.recorder.pending == 0, "writes")
        finally:
            await engine.stop()
        result.update(engine.metrics())

    aio.run(scenario())
    [failed] = [e for e in events if e.kind == "evidence_write_failed"]
    assert "trading goes on" in failed.message and "not a folder" in failed.message
    assert result["evidence_write_failures_total"] >= 1
    assert result["evidence_lost_total"] > 0 and result["evidence_candles_total"] == 0
    # the decisions have a folder of their own: they were written all along
    assert result["evidence_decisions_total"] == len(read_decisions(tmp_path / "decisions")) > 0
    kinds = [row.kind for row in query(database_url, "SELECT kind FROM events")]
    assert kinds.count("evidence_write_failed") == 1  # once, not once per batch


def test_recording_is_off_unless_asked(
    aio: Aio, tmp_path: Path, database_url: str, strategies_dir: Path
) -> None:
    add_bots(database_url, strategies_dir, [("always", "always")])

    async def scenario() -> dict[str, float]:
        running = await start_engine(config_for(database_url, strategies_dir))
        try:
            await push(running, walk(20))
            assert running.engine.core.evidence is None
        finally:
            await running.engine.stop()
        return running.engine.metrics()

    metrics = aio.run(scenario())
    assert metrics["evidence_candles_total"] == metrics["evidence_decisions_total"] == 0
    assert not (tmp_path / "market_data").exists() and not (tmp_path / "decisions").exists()


def test_settings_turn_recording_on_by_default_and_bad_values_are_refused(
    tmp_path: Path, database_url: str, strategies_dir: Path
) -> None:
    config = EngineConfig.from_settings(load_settings(home=tmp_path))
    assert config.record_candles and config.record_decisions  # `tradepipe live run`, `make up`
    assert config.market_data_dir == (tmp_path / "market_data").resolve()
    assert config.decision_log_dir == (tmp_path / "decisions").resolve()
    assert (config.record_exchange, config.decision_retention_days) == (LIVE, 30)
    quiet = load_settings(home=tmp_path, record_candles=False, decision_retention_days=7)
    config = EngineConfig.from_settings(quiet)
    assert not config.record_candles and config.decision_retention_days == 7
    with pytest.raises(ConfigError, match="decision_retention_days"):
        load_settings(decision_retention_days=0)
    with pytest.raises(ConfigError, match="record_exchange"):
        load_settings(record_exchange="Binance Live")
    with pytest.raises(ValueError, match="record_candles needs market_data_dir"):
        config_for(database_url, strategies_dir, record_candles=True)


def test_a_stuck_writer_does_not_hold_up_the_stop(aio: Aio, tmp_path: Path) -> None:
    store = MarketDataStore(tmp_path / "market_data")
    series = store.series_dir(LIVE, "BTCUSDT", "1s")
    series.mkdir(parents=True)
    evidence = EvidenceRecorder(
        store_root=tmp_path / "market_data",
        decision_root=None,
        exchange=LIVE,
        retention_days=30,
        queue_size=3,
        flush_seconds=0.01,
        on_event=lambda kind, message: None,
    )
    candles = [
        Candle("BTCUSDT", ONE_SECOND, START_MS + i * 1_000, 1.0, 1.0, 1.0, 1.0, 1.0)
        for i in range(20)
    ]

    async def scenario() -> bool:
        evidence.start()
        evidence.candle(candles[0])
        await aio.eventually(lambda: evidence.metrics().queued == 0, "the writer to take it")
        for candle in candles[1:]:  # the writer is stuck on the lock: 3 wait, the rest drop
            evidence.candle(candle)
        return await evidence.close(0.3)

    with (series / ".lock").open("a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        assert aio.run(scenario(), timeout=5) is False  # the deadline, not the lock, decided
        fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
    assert evidence.dropped == 16
    evidence.candle(candles[0])  # after close: counted, never queued
    assert evidence.dropped == 17

    # released, the writer writes what it held and ends (closed, queue empty)
    def ended() -> bool:
        return not any(t.name == "evidence" and t.is_alive() for t in threading.enumerate())

    aio.run(aio.eventually(ended, "the writer to end"))
    assert store.row_count(LIVE, "BTCUSDT", "1s") == evidence.candles_written == 4


def test_the_engine_keeps_the_decision_log_to_its_retention(
    aio: Aio, tmp_path: Path, database_url: str, strategies_dir: Path
) -> None:
    add_bots(database_url, strategies_dir, [("always", "always")])
    log_dir = tmp_path / "decisions"
    old = read_decisions(log_dir)  # an empty frame with the log's columns
    for day in ("2023-12-01", "2023-12-28"):  # 31 and 4 days before the market's day
        (log_dir / f"day={day}").mkdir(parents=True)
        old.to_parquet(log_dir / f"day={day}" / "part-0-old.parquet")

    async def scenario() -> None:
        config = config_for(
            database_url, strategies_dir, **recording(tmp_path, decision_retention_days=7)
        )
        running = await start_engine(config)
        try:
            await push(running, walk(50))
        finally:
            await running.engine.stop()

    aio.run(scenario())
    assert decision_days(log_dir) == ["2023-12-28", "2024-01-01"]
