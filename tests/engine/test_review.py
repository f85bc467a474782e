"""`tradepipe live review` against a real engine run: the engine trades the replay feed for
ten market minutes with both default strategies (ema_rsi, and lgbm_threshold with a
champion) and records its candles and decisions; the review replays them through the
backtester and finds features and decisions equal and every position matched, each price
difference attributed. A strategy that reads the wall clock is named by the review."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from textwrap import dedent

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from app.cli import app
from live.engine import build_engine
from live.feeds import BinanceFeed
from live.replay import ReplayServer, SyntheticSource
from research.orchestration.common import DataInterval
from research.orchestration.live_review import plan_reviews, review_one_bot
from tests.engine.helpers import (
    START_MS,
    Aio,
    MarketTimes,
    add_bots,
    champion_loaded,
    config_for,
    query,
    replay_to_the_end,
)
from tests.engine.model_store import ModelStore
from tests.engine.test_evidence import MODEL, recording
from tests.support import feed_config
from tradepipe.config import load_settings

CAUSES = ("slippage", "latency", "entry price", "fill model")
POSITION_KINDS = {"entry_price", "exit_price", "exit_reason", "entry_fill"}
# Five market minutes of the synthetic market from 08:00: an uptrend with dips, where
# ema_rsi enters a few times (from 01:00 the market falls and it never does).
WINDOW_START_MS = START_MS + 8 * 3_600_000
WINDOW_MS = 300_000
SPEED = 50  # six wall seconds: the broker's latency stays a trade or two of market
# Room for every entry: a strategy sees `can_enter` True on both sides whatever the exit
# timing, so its decisions depend on the candles alone (what the test is about); a full
# book with different exits is a divergence the review attributes (unit tests).
SLOTS = {"max_open_positions": 200, "max_holding_seconds": 15.0}

WALL_CLOCK = """
import time

from tradepipe.strategy import Enter, Strategy, StrategyParameters


class WallClock(Strategy[StrategyParameters]):
    def on_candle(self, context):
        # reads the wall clock: live and a replay of the same candles cannot agree
        if context.can_enter and time.time() % 2 < 1:
            return Enter(reason="even second")
        return None
"""


def run_engine(
    aio: Aio,
    tmp_path: Path,
    database_url: str,
    strategies_dir: Path,
    model_store: ModelStore | None,
    waiting_for: str | None,
    version: str | None = None,
) -> None:
    """The engine on the synthetic replay for WINDOW_MS of market, recording evidence."""
    end_ms = WINDOW_START_MS + WINDOW_MS
    source = MarketTimes(SyntheticSource(["BTCUSDT"], start_ms=WINDOW_START_MS, end_ms=end_ms))

    async def scenario() -> None:
        async with ReplayServer(source, speed=SPEED, wait_for_subscribers=2) as replay:
            extra = {} if model_store is None else {"mlflow_tracking_uri": model_store.tracking_uri}
            config = config_for(
                database_url,
                strategies_dir,
                rest_url=replay.rest_url,
                **extra,
                **recording(tmp_path),
            )
            engine = build_engine(config, feed=BinanceFeed(feed_config(replay.url)))
            await engine.start()
            try:
                if waiting_for is not None:
                    await champion_loaded(aio, engine, version, waiting_for)
                await replay_to_the_end(aio, replay)
                await asyncio.sleep(1.0)  # past the close grace: the last candles close
            finally:
                await engine.stop()

    aio.run(scenario(), timeout=90)


def review(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    database_url: str,
    bot: str,
    tracking_uri: str | None = None,
) -> dict[str, object]:
    monkeypatch.setenv("TRADEPIPE_HOME", str(tmp_path / "var"))
    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", database_url)
    monkeypatch.setenv("TRADEPIPE_MARKET_DATA_DIR", str(tmp_path / "market_data"))
    monkeypatch.setenv("TRADEPIPE_DECISION_LOG_DIR", str(tmp_path / "decisions"))
    if tracking_uri is not None:
        monkeypatch.setenv("TRADEPIPE_MLFLOW_TRACKING_URI", tracking_uri)
    result = CliRunner().invoke(app, ["live", "review", "--bot", bot, "--json"])
    assert result.exit_code == 0, result.output
    summary: dict[str, object] = json.loads(result.stdout)
    return summary


def assert_reconciled(summary: dict[str, object]) -> None:
    assert summary["features_equal"] is True, summary["divergences"]
    assert summary["probabilities_equal"] is True
    assert summary["decisions_equal"] is True, summary["divergences"]
    assert summary["decision_agreement"] == 1.0
    assert summary["features_compared"] == summary["decisions_compared"]
    assert isinstance(summary["features_compared"], int) and summary["features_compared"] > 10
    live, backtest = summary["positions_live"], summary["positions_backtest"]
    assert isinstance(live, int) and live > 0
    assert summary["positions_matched"] == live == backtest  # every position matched
    divergences = summary["divergences"]
    assert isinstance(divergences, list)
    for divergence in divergences:  # only position differences, each with its cause
        assert divergence["kind"] in POSITION_KINDS, divergence
        assert divergence["cause"].startswith(CAUSES), divergence
    # the paper broker fills a market entry at the trade after the order arrives, moved by
    # its slippage, where the backtest takes the next candle's open
    entries = [d for d in divergences if d["kind"] == "entry_price"]
    assert entries and {d["cause"].split(":")[0] for d in entries} <= {"slippage", "latency"}
    matched = summary["matched"]
    assert isinstance(matched, list)
    for pair in matched:
        live_entry, backtest_entry = pair["live"]["entry_price"], pair["backtest"]["entry_price"]
        if live_entry is not None and backtest_entry is not None and live_entry != backtest_entry:
            assert any(d["kind"] == "entry_price" for d in pair["divergences"]), pair


def test_the_review_reconciles_both_default_strategies(
    aio: Aio,
    tmp_path: Path,
    database_url: str,
    strategies_dir: Path,
    model_store: ModelStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    version = model_store.register(MODEL, seed=3)
    dips = {"strategy_parameters": {"rsi_entry_below": 55.0}}  # a few entries in minutes
    add_bots(database_url, strategies_dir, [("ema", "ema_rsi")], timeframe="5s", **dips, **SLOTS)
    add_bots(
        database_url,
        strategies_dir,
        [("lgbm", "lgbm_threshold")],
        confidence_threshold=0.5,
        timeframe="5s",
        **SLOTS,
    )
    run_engine(aio, tmp_path, database_url, strategies_dir, model_store, "lgbm", version)

    for bot in ("ema", "lgbm"):
        summary = review(monkeypatch, tmp_path, database_url, bot, model_store.tracking_uri)
        assert_reconciled(summary)
    assert summary["segments"][0]["model_version"] == version  # type: ignore[index]

    rows = query(database_url, "SELECT bot_name, summary FROM live_reviews ORDER BY id")
    assert [row.bot_name for row in rows] == ["ema", "lgbm"]
    kept = rows[1].summary
    kept = json.loads(kept) if isinstance(kept, str) else kept
    assert kept["positions_matched"] == summary["positions_matched"]
    client = MlflowClient(tracking_uri=model_store.tracking_uri)
    experiment = client.get_experiment_by_name("live_reviews")
    assert experiment is not None
    [run] = client.search_runs([experiment.experiment_id], "tags.`tradepipe.bot` = 'lgbm'")
    assert run.data.tags["tradepipe.model_version"] == version
    assert run.data.metrics["matched_ratio"] == 1.0
    assert run.data.metrics["decision_agreement"] == 1.0

    # the live_review DAG's task bodies over the market's day: one row per bot and day,
    # replaced when the day is re-run
    day = DataInterval(datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC))
    plans = plan_reviews(load_settings())
    assert plans == [{"bot": "ema"}, {"bot": "lgbm"}]
    first = review_one_bot(plans[1], day, load_settings())
    again = review_one_bot(plans[1], day, load_settings())
    assert first["review_id"] == again["review_id"]
    assert again["positions_matched"] == again["positions_live"] == summary["positions_live"]
    assert again["features_equal"] is again["decisions_equal"] is True
    review_id = again["review_id"]
    [evaluation] = client.search_runs(
        [experiment.experiment_id], f"tags.`tradepipe.live_review_id` = '{review_id}'"
    )  # the re-run replaced the day's evaluation run
    assert evaluation.info.run_id == again["mlflow_runs"][0]  # type: ignore[index]
    daily = query(database_url, "SELECT id FROM live_reviews WHERE bot_name = 'lgbm'")
    assert len(daily) == 2  # the command's and the day's
    quiet = DataInterval(datetime(2024, 1, 2, tzinfo=UTC), datetime(2024, 1, 3, tzinfo=UTC))
    skipped = review_one_bot(plans[0], quiet, load_settings())
    assert "no decisions recorded" in skipped["skipped"]


def test_the_review_names_a_strategy_that_reads_the_wall_clock(
    aio: Aio,
    tmp_path: Path,
    database_url: str,
    strategies_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (strategies_dir / "wall_clock.py").write_text(dedent(WALL_CLOCK))
    add_bots(database_url, strategies_dir, [("clock", "wall_clock")], timeframe="5s", **SLOTS)
    run_engine(aio, tmp_path, database_url, strategies_dir, None, None)

    summary = review(monkeypatch, tmp_path, database_url, "clock")
    assert summary["features_equal"] is True
    assert summary["decisions_equal"] is False
    divergences = summary["divergences"]
    assert isinstance(divergences, list)
    decisions = [d for d in divergences if d["kind"] == "decision"]
    assert decisions
    for divergence in decisions:
        assert divergence["time"].startswith("2024-01-01T08:0")  # the candle, in market time
        assert "reads something besides its context" in divergence["cause"]
        assert divergence["detail"] in {"live enter, backtest hold", "live hold, backtest enter"}
    agreement = summary["decision_agreement"]
    assert isinstance(agreement, float) and agreement < 1.0
    # the plain form: one headline, then one line per divergence
    result = CliRunner().invoke(app, ["live", "review", "--bot", "clock", "--no-record"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "features equal, decisions DIFFER" in lines[0]
    # (a replay reads the wall clock again: its divergences are not the --json run's)
    kinds = {line.split()[0] for line in lines[1:]}
    assert all(line.startswith("  ") for line in lines[1:]) and "decision" in kinds
    assert kinds <= {"decision", "position_live_only", "position_backtest_only"} | POSITION_KINDS
    kept = query(database_url, "SELECT count(*) AS n FROM live_reviews")
    assert kept[0].n == 1  # the --json run's; --no-record kept nothing
