"""Task bodies of the `strategy_sync` DAG: reconcile the registry, backtest what loads.

The sync is the kernel's `sync_strategies`, the same function the live engine and the
command line call, so there is one definition of what the registry says.

Every valid strategy is then backtested on the same recent window: the last `days` (see
the orchestration config) of one candle series, ending at the run's data interval end or
at the newest stored candle if that is earlier. The result is recorded as an `events` row
of kind "strategy_backtest" (payload below), not as an MLflow run: these are reports about
strategy files for the dashboard's event feed and strategy pages, which read the trading
database; MLflow stays the registry of models. A strategy that consumes a model is
backtested with that model's current champion; without a champion it is recorded as
skipped, with the reason. The bot config is the one `tradepipe backtest` uses by default.

Idempotent: the event's `created_at` is the data interval end, and a backtest whose
(strategy hash, data window, model version) is already recorded at that time is not run
again. Payload: strategy, content_hash, class_name, data, start_ms, end_ms, model (name/
version or None), status ("ok" or "skipped"), reason, candles, metrics (BacktestMetrics,
non-finite figures as None).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from research.backtest import run_backtest
from research.backtest.strategy_file import default_config
from research.marketdata import SourceError
from research.marketdata.load import CandleData, load_candles
from research.orchestration.common import (
    DataInterval,
    OrchestrationError,
    json_safe,
    trading_session,
)
from research.orchestration.config import (
    OrchestrationConfig,
    discover_specs,
    load_orchestration_config,
)
from tradepipe.botconfig import BotConfig
from tradepipe.config import Settings, load_settings
from tradepipe.costs import PAPER_COSTS
from tradepipe.db import Event, Strategy, StrategyStatus
from tradepipe.features import compute_features, default_spec
from tradepipe.marketdata import MarketDataStore
from tradepipe.strategy import LoadedStrategy, load_strategy
from tradepipe.strategy.registry_sync import sync_strategies
from tradepipe.timeframes import Timeframe

if TYPE_CHECKING:
    from tradepipe.registry import LoadedModel

__all__ = ["BACKTEST_EVENT", "backtest_strategy", "plan_backtests", "sync_registry"]

BACKTEST_EVENT = "strategy_backtest"
_DAY_MS = 86_400_000
# The payload fields that identify one backtest: same values, same result.
_KEY_FIELDS = ("strategy", "content_hash", "data", "start_ms", "end_ms", "model")

log = logging.getLogger(__name__)


def sync_registry(settings: Settings | None = None) -> dict[str, Any]:
    """Sync the registry with Settings' strategies folder; the report as a dict."""
    current = settings or load_settings()
    with trading_session(current.resolved_database_url) as session:
        report = sync_strategies(session, current.strategies_dir)
    log.info("strategy registry: %s", report.summary())
    return report.to_dict() | {"summary": report.summary()}


def plan_backtests(
    report: Mapping[str, Any],
    interval: DataInterval,
    config: OrchestrationConfig | None = None,
    settings: Settings | None = None,
) -> list[dict[str, Any]]:
    """One backtest per valid strategy, all on the same recent window."""
    names = [str(name) for name in report.get("valid", [])]
    if not names:
        return []
    current = config or load_orchestration_config()
    data = current.strategy_backtest.data
    store = MarketDataStore((settings or load_settings()).resolved_market_data_dir)
    history = _load(data, store, None, interval.end_ms)
    end_ms = history.end_ms
    start_ms = max(history.start_ms, end_ms - round(current.strategy_backtest.days * _DAY_MS))
    return [
        {"strategy": name, "data": data, "start_ms": start_ms, "end_ms": end_ms} for name in names
    ]


def backtest_strategy(
    plan: Mapping[str, Any], interval: DataInterval, settings: Settings | None = None
) -> dict[str, Any]:
    """Backtest one strategy as its file is now and record the figures (once)."""
    current = settings or load_settings()
    name = str(plan["strategy"])
    with trading_session(current.resolved_database_url) as session:
        row = session.scalars(sa.select(Strategy).where(Strategy.name == name)).one_or_none()
        if row is None or row.status is not StrategyStatus.VALID:
            raise OrchestrationError(
                f"strategy {name!r} is no longer valid in the registry: the next sync reports why"
            )
        path = Path(row.file_path)
    loaded = load_strategy(path)  # StrategyLoadError names file and line
    payload: dict[str, Any] = {
        "strategy": name,
        "content_hash": loaded.content_hash,
        "class_name": loaded.class_name,
        "data": str(plan["data"]),
        "start_ms": int(plan["start_ms"]),
        "end_ms": int(plan["end_ms"]),
        "model": None,
        "interval": interval.to_dict(),
    }
    model, skipped = _champion(loaded, current)
    if model is not None:
        payload["model"] = f"{model.name}/{model.version}"
    recorded = _recorded(payload, interval, current)
    if recorded is not None:
        return recorded | {"reused": True}
    if skipped is not None:
        payload |= {"status": "skipped", "reason": skipped, "candles": 0, "metrics": {}}
    else:
        payload |= _run(loaded, payload, model, current)
    recorded_payload: dict[str, Any] = json_safe(payload)
    with trading_session(current.resolved_database_url) as session:
        session.add(Event(kind=BACKTEST_EVENT, payload=recorded_payload, created_at=interval.end))
    return recorded_payload | {"reused": False}


def _bot_config(loaded: LoadedStrategy, timeframe: Timeframe) -> BotConfig:
    """The bot config of the spec that registers the model the strategy consumes (the
    threshold and exits its champion was gated with: a champion judged at another threshold
    may never trade here), else the backtest default."""
    wanted = loaded.cls.model
    if wanted is not None:
        from research.training import SpecError, load_spec  # mlflow: only for such strategies

        for path in discover_specs():
            try:
                spec = load_spec(path)
            except SpecError:
                continue  # model_lifecycle reports a broken spec; it decides nothing here
            if spec.registered_model == wanted.name:
                return spec.bot_config
    return default_config(timeframe)


def _champion(loaded: LoadedStrategy, settings: Settings) -> tuple[LoadedModel | None, str | None]:
    """The champion of the model the strategy consumes: (model, None), (None, why not),
    or (None, None) for a strategy without a model."""
    wanted = loaded.cls.model
    if wanted is None:
        return None, None
    # mlflow is imported only for the strategies that need a model.
    from tradepipe.registry import ModelNotFoundError, ModelRegistry

    try:
        return ModelRegistry(settings.resolved_mlflow_tracking_uri).load_uri(wanted.uri), None
    except ModelNotFoundError as error:
        return None, f"no model to backtest with: {error}"


def _run(
    loaded: LoadedStrategy,
    payload: Mapping[str, Any],
    model: LoadedModel | None,
    settings: Settings,
) -> dict[str, Any]:
    store = MarketDataStore(settings.resolved_market_data_dir)
    candles = _load(str(payload["data"]), store, payload["start_ms"], payload["end_ms"])
    feature_spec = (model.feature_spec() if model is not None else None) or default_spec()
    features = compute_features(candles.candles, feature_spec)
    result = run_backtest(
        candles.candles,
        loaded.create(),
        _bot_config(loaded, candles.timeframe),
        symbol=candles.symbol,
        timeframe=candles.timeframe,
        features=features,
        feature_spec=feature_spec,
        probabilities=None if model is None else model.predict_defined(features),
        fees=PAPER_COSTS.fees,  # the costs a paper bot of the strategy would pay
        slippage_bps=PAPER_COSTS.slippage_bps,
        strategy_hash=loaded.content_hash,
        model_version=payload["model"],
    )
    return {
        "status": "ok",
        "reason": None,
        "candles": candles.rows,
        "metrics": result.metrics.to_dict(),
    }


def _recorded(
    payload: Mapping[str, Any], interval: DataInterval, settings: Settings
) -> dict[str, Any] | None:
    """The payload of this very backtest if this interval already recorded it."""
    with trading_session(settings.resolved_database_url) as session:
        events = session.scalars(
            sa.select(Event).where(Event.kind == BACKTEST_EVENT, Event.created_at == interval.end)
        )
        for event in events:
            if all(event.payload.get(field) == payload[field] for field in _KEY_FIELDS):
                return dict(event.payload)
    return None


def _load(reference: str, store: MarketDataStore, start_ms: int | None, end_ms: int) -> CandleData:
    try:
        return load_candles(reference, store=store, start_ms=start_ms, end_ms=end_ms)
    except SourceError as error:
        raise OrchestrationError(
            f"strategy backtests need candles: {error} (ingest them with the market_data DAG, "
            "or set strategy_backtest.data in the orchestration config)"
        ) from None
