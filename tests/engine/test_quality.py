"""Live model quality from recorded evidence: the engine trades the loopback replay with a
champion and records its candles and decisions; the outcomes of its decisions once matured,
labelled over the recorded candles, give live AUC, precision and hit rate equal to an
independent computation here; PSI is 0 against the same distribution and large against a
shifted one; /metrics shows the per-version gauges (computed in the background); MLflow
holds the figures with time steps, through `tradepipe models quality` as well."""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from app.cli import app
from live.api import ApiServer, create_app
from live.engine import build_engine
from live.feeds import BinanceFeed
from live.replay import ReplayServer, SyntheticSource
from tests.api.promtext import parse, value
from tests.engine.helpers import (
    Aio,
    MarketTimes,
    add_bots,
    champion_loaded,
    config_for,
    replay_to_the_end,
)
from tests.engine.model_store import ModelStore
from tests.engine.test_evidence import LIVE, MODEL, SPEED, WINDOW_START_MS, recording
from tests.support import feed_config
from tradepipe.marketdata import MarketDataStore
from tradepipe.marketdata.decisions import feature_frame, read_decisions
from tradepipe.quality import (
    LiveQuality,
    QualityReference,
    build_reference,
    live_outcomes,
    live_quality,
)
from tradepipe.quality_report import VersionQuality, evaluation_steps, quality_from_evidence
from tradepipe.registry import EVALUATION_EXPERIMENT, QUALITY_REFERENCE_ARTIFACT

WINDOW_MS = 900_000
TIMEFRAME_MS = 5_000
BARRIERS = {"take_profit_pct": 0.05, "stop_loss_pct": 0.05, "max_holding_seconds": 30.0}


def outcome_by_hand(candles: pd.DataFrame, start_ms: int) -> int:
    """1 take-profit, 0 stop-loss or timeout, -1 unknown: one candle at a time, the fill
    rules as the order state machine states them (gap at the open, stop first)."""
    starts = candles["start_ms"].tolist()
    if start_ms not in starts:
        return -1
    rows = candles.iloc[starts.index(start_ms) + 1 :]
    if rows.empty or rows["start_ms"].iloc[-1] + TIMEFRAME_MS < rows["start_ms"].iloc[0] + 30_000:
        return -1  # no candle ends at or after the deadline yet
    entry = float(rows["open"].iloc[0])
    take_profit, stop_loss = entry * (1 + 0.05 / 100), entry * (1 - 0.05 / 100)
    expires = int(rows["start_ms"].iloc[0]) + 30_000
    for start, open_, high, low in rows[["start_ms", "open", "high", "low"]].itertuples(
        index=False
    ):
        if start >= expires or open_ <= stop_loss:
            return 0
        if open_ >= take_profit:
            return 1
        if low <= stop_loss:
            return 0
        if high >= take_profit:
            return 1
        if start + TIMEFRAME_MS >= expires:
            return 0
    raise AssertionError("unreachable: the last candle ends after the deadline")


def log_reference(
    store: ModelStore, version: str, reference: QualityReference, name: str = MODEL
) -> None:
    run_id = store.registry.version(name, version).run_id
    assert run_id is not None
    client = MlflowClient(store.tracking_uri, store.tracking_uri)
    client.log_text(run_id, reference.to_json(), QUALITY_REFERENCE_ARTIFACT)


def test_live_quality_of_the_recorded_evidence(
    aio: Aio,
    tmp_path: Path,
    database_url: str,
    strategies_dir: Path,
    model_store: ModelStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    version = model_store.register(MODEL)
    stored = log_a_training_reference_far_from_the_replay(model_store, version)
    add_bots(
        database_url,
        strategies_dir,
        [("lgbm", "lgbm_threshold")],
        confidence_threshold=0.01,
        timeframe="5s",
        **BARRIERS,
    )
    scraped = aio.run(
        trade_with_quality_refreshes(
            aio, tmp_path, database_url, strategies_dir, model_store, version
        ),
        timeout=120,
    )
    live = matured_decisions(tmp_path)
    quality = assert_the_quality_of_the_evidence(tmp_path, model_store, version, stored, live)
    assert_psi_near_zero_on_the_same_features_and_large_on_shifted_ones(live)
    assert_the_metrics_show_the_quality(scraped, version, stored)
    assert_the_cli_logs_one_evaluation_run(
        monkeypatch, tmp_path, model_store, version, stored, live, quality
    )


def log_a_training_reference_far_from_the_replay(
    model_store: ModelStore, version: str
) -> QualityReference:
    # a training reference far from the replay's features: N(0, 1) rows, as ModelStore trains
    rng = np.random.default_rng(5)
    model = model_store.registry.load(MODEL, version=version)
    names = list(model.feature_names)
    training = pd.DataFrame(rng.normal(size=(400, len(names))), columns=names)
    stored = build_reference(training, rng.random(400) > 0.5, model.predict_proba(training), 0.01)
    log_reference(model_store, version, stored)
    return stored


async def trade_with_quality_refreshes(
    aio: Aio,
    tmp_path: Path,
    database_url: str,
    strategies_dir: Path,
    model_store: ModelStore,
    version: str,
) -> str:
    """The window replayed once the champion is loaded; returns the /metrics text scraped
    once every decision is written and the quality has been refreshed twice more."""
    end_ms = WINDOW_START_MS + WINDOW_MS
    source = MarketTimes(SyntheticSource(["BTCUSDT"], start_ms=WINDOW_START_MS, end_ms=end_ms))
    scraped: list[str] = []
    async with ReplayServer(source, speed=SPEED, wait_for_subscribers=2) as replay:
        config = config_for(
            database_url,
            strategies_dir,
            rest_url=replay.rest_url,
            mlflow_tracking_uri=model_store.tracking_uri,
            quality_seconds=0.2,
            **recording(tmp_path),
        )
        engine = build_engine(config, feed=BinanceFeed(feed_config(replay.url)))
        await engine.start()
        server = ApiServer(create_app(engine, token=None), "127.0.0.1", 0)
        serving = asyncio.create_task(server.serve())
        try:
            port = await server.wait_started()
            await champion_loaded(aio, engine, version, "lgbm")
            await replay_to_the_end(aio, replay, 60)
            await aio.eventually(lambda: engine.evidence.metrics().queued == 0, "writes")
            await aio.eventually(
                lambda: engine.evidence.metrics().decisions > 100, "decisions written"
            )
            refreshed = engine.quality.refreshes
            await aio.eventually(
                lambda: engine.quality.refreshes > refreshed + 1, "two more refreshes"
            )
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                scraped.append((await client.get("/metrics")).text)
        finally:
            serving.cancel()
            with pytest.raises(asyncio.CancelledError):
                await serving
            await engine.stop()
    return scraped[0]


@dataclass(frozen=True)
class MaturedDecisions:
    """The recorded decisions, the recorded 5 s candles, and the outcomes worked out by
    hand of the decisions that have matured."""

    decisions: pd.DataFrame
    candles: pd.DataFrame
    matured: list[tuple[int, float]]
    labels: np.ndarray
    probabilities: np.ndarray


def matured_decisions(tmp_path: Path) -> MaturedDecisions:
    decisions = read_decisions(tmp_path / "decisions", bots=["lgbm"])
    candles = MarketDataStore(tmp_path / "market_data").read_candles(LIVE, "BTCUSDT", "5s")
    expected = [outcome_by_hand(candles, int(start)) for start in decisions["candle_start_ms"]]
    matured = [(label, p) for label, p in zip(expected, decisions["probability"], strict=True)
               if label >= 0]  # fmt: skip
    labels = np.array([label for label, _ in matured])
    probabilities = np.array([p for _, p in matured])
    assert len(matured) > 100 and 0 < labels.mean() < 1  # both outcomes happened
    return MaturedDecisions(decisions, candles, matured, labels, probabilities)


def assert_the_quality_of_the_evidence(
    tmp_path: Path,
    model_store: ModelStore,
    version: str,
    stored: QualityReference,
    live: MaturedDecisions,
) -> LiveQuality:
    """quality_from_evidence finds the version and its reference, and its figures are the
    ones computed here from the outcomes by hand."""
    decisions, matured = live.decisions, live.matured
    labels, probabilities = live.labels, live.probabilities

    def reference_of(name: str, number: str) -> QualityReference | None:
        return model_store.registry.quality_reference(name, number)

    [found] = quality_from_evidence(
        tmp_path / "decisions", tmp_path / "market_data", LIVE, reference_of, model=MODEL
    )
    assert found.version == version and found.reference is not None
    assert found.reference.to_json() == stored.to_json()  # NaN in empty bins: compare text
    quality = found.quality
    assert quality.decisions == len(decisions) and quality.matured == len(matured)
    assert len(decisions) - len(matured) <= 8  # only the last 30 s have not matured
    assert quality.figures["auc"] == pytest.approx(roc_auc_score(labels, probabilities))
    assert 0 <= quality.figures["auc"] <= 1
    # threshold 0.01: every decision is an entry, so precision is the take-profit rate
    assert quality.figures["precision_at_threshold"] == pytest.approx(labels.mean())
    entered = probabilities > 0.01
    assert quality.figures["hit_rate"] == pytest.approx(np.mean(entered == (labels == 1)))
    assert quality.max_feature_psi > 1 and quality.prediction_psi >= 0  # N(0,1) is far away
    return quality


def assert_psi_near_zero_on_the_same_features_and_large_on_shifted_ones(
    live: MaturedDecisions,
) -> None:
    decisions, candles = live.decisions, live.candles
    labels, probabilities = live.labels, live.probabilities
    # PSI: ~0 against the distribution of the same features, large against a shifted one
    features = feature_frame(decisions)
    same = build_reference(features, labels[:1], probabilities[:1], 0.01)
    assert all(v == pytest.approx(0, abs=1e-9) for v in found_with(same, decisions, candles))
    # shifted past the live range (a shift within it moves no value across the edges of a
    # feature that is mostly one value, like a wick that is 0 on most candles)
    beyond = features + (features.max() - features.min() + 1)
    shifted = build_reference(beyond, labels[:1], probabilities[:1], 0.01)
    far = found_with(shifted, decisions, candles)
    # large (above the usual 0.25) for every feature, and very large where values spread
    assert min(far) > 0.25 and float(np.median(far)) > 5


def assert_the_metrics_show_the_quality(
    scraped: str, version: str, stored: QualityReference
) -> None:
    samples, types = parse(scraped)
    labels_of = {"model": MODEL, "version": version}
    assert types["tradepipe_model_live_auc"] == "gauge"
    live_auc = value(samples, "tradepipe_model_live_auc", **labels_of)
    assert 0 <= live_auc <= 1
    assert value(samples, "tradepipe_model_matured_outcomes", **labels_of) > 100
    assert value(samples, "tradepipe_model_max_feature_psi", **labels_of) > 1
    assert value(samples, "tradepipe_model_validation_auc", **labels_of) == pytest.approx(
        stored.figures["auc"]
    )
    for name in ("live_precision", "live_hit_rate", "prediction_psi"):
        assert not math.isnan(value(samples, f"tradepipe_model_{name}", **labels_of)), name
    assert value(samples, "tradepipe_engine_quality_refreshes_total") >= 2


def assert_the_cli_logs_one_evaluation_run(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    model_store: ModelStore,
    version: str,
    stored: QualityReference,
    live: MaturedDecisions,
    quality: LiveQuality,
) -> None:
    matured = live.matured
    # MLflow: the CLI computes and logs one evaluation run with the figures per hour step
    monkeypatch.setenv("TRADEPIPE_MLFLOW_TRACKING_URI", model_store.tracking_uri)
    monkeypatch.setenv("TRADEPIPE_DECISION_LOG_DIR", str(tmp_path / "decisions"))
    monkeypatch.setenv("TRADEPIPE_MARKET_DATA_DIR", str(tmp_path / "market_data"))
    result = CliRunner().invoke(
        app, ["models", "quality", MODEL, "--bucket-minutes", "5", "--json"]
    )
    assert result.exit_code == 0, result.output
    [printed] = json.loads(result.stdout)
    assert printed["matured"] == len(matured) and printed["version"] == version
    assert printed["live"]["auc"] == pytest.approx(quality.figures["auc"])
    assert printed["validation"]["auc"] == pytest.approx(stored.figures["auc"])
    client = MlflowClient(model_store.tracking_uri, model_store.tracking_uri)
    run = client.get_run(printed["mlflow_run_id"])
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment is not None and experiment.name == EVALUATION_EXPERIMENT
    history = client.get_metric_history(run.info.run_id, "live/matured")
    steps = sorted(item.step for item in history)
    assert len(steps) == 3 and steps == sorted(evaluation_steps(found_in_buckets(tmp_path)))
    assert all(step % 300 == 0 for step in steps)  # bucket ends, seconds since the epoch
    assert sum(item.value for item in history) == len(matured)
    again = CliRunner().invoke(app, ["models", "quality", MODEL, "--bucket-minutes", "5"])
    assert again.exit_code == 0, again.output
    assert version in again.stdout and "matured" in again.stdout
    assert len(client.get_metric_history(run.info.run_id, "live/matured")) == 3  # not twice


def found_with(
    reference: QualityReference, decisions: pd.DataFrame, candles: pd.DataFrame
) -> list[float]:
    outcomes = live_outcomes(decisions, lambda symbol, timeframe: candles)
    return list(live_quality(outcomes, reference).feature_psi.values())


def found_in_buckets(tmp_path: Path) -> VersionQuality:
    [item] = quality_from_evidence(
        tmp_path / "decisions",
        tmp_path / "market_data",
        LIVE,
        lambda name, number: None,
        bucket_ms=300_000,
    )
    return item
