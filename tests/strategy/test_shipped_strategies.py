"""The two strategies in strategies/: they load, need only features the default spec has,
and decide as documented."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from tradepipe.botconfig import BotConfig
from tradepipe.domain import Candle
from tradepipe.features import default_spec
from tradepipe.strategy import DecisionContext, Enter, LoadedStrategy, load_strategy
from tradepipe.timeframes import parse_timeframe

STRATEGIES = Path(__file__).resolve().parents[2] / "strategies"
CONFIG = BotConfig(
    capital_per_trade=100,
    take_profit_pct=1,
    stop_loss_pct=1,
    max_holding_seconds=3600,
    maker_order_timeout_seconds=60,
    confidence_threshold=0.6,
)
CANDLE = Candle("BTCUSDT", parse_timeframe("1m"), 0, 100, 101, 99, 100.0, 5.0, 2.5, 10)


def context(
    features: dict[str, float], probability: float | None = None, positions: int = 0
) -> DecisionContext:
    open_positions: tuple[Any, ...] = tuple(object() for _ in range(positions))
    return DecisionContext(CANDLE, MappingProxyType(features), probability, open_positions, CONFIG)


@pytest.fixture(scope="module", params=["ema_rsi", "lgbm_threshold"])
def shipped(request: pytest.FixtureRequest) -> LoadedStrategy:
    return load_strategy(STRATEGIES / f"{request.param}.py")


def test_loads_with_default_parameters_and_known_features(shipped: LoadedStrategy) -> None:
    assert shipped.create() is not None
    assert set(shipped.cls.required_features) <= set(default_spec().feature_names)


def test_ema_rsi_buys_a_dip_in_an_uptrend_only() -> None:
    strategy = load_strategy(STRATEGIES / "ema_rsi.py").create()
    dip_in_uptrend = {"close_ema_12": 0.99, "close_ema_26": 1.01, "rsi_14": 30.0}
    assert strategy.on_candle(context(dip_in_uptrend)) == Enter(reason="dip in uptrend")
    assert strategy.on_candle(context({**dip_in_uptrend, "rsi_14": 55.0})) is None
    downtrend = {"close_ema_12": 1.01, "close_ema_26": 0.99, "rsi_14": 30.0}
    assert strategy.on_candle(context(downtrend)) is None
    assert strategy.on_candle(context(dip_in_uptrend, positions=1)) is None  # at its limit
    limit = load_strategy(STRATEGIES / "ema_rsi.py").create({"limit_offset_pct": 0.5})
    decision = limit.on_candle(context(dip_in_uptrend))
    assert decision is not None and decision.limit_price == pytest.approx(99.5)


def test_lgbm_threshold_follows_the_bots_confidence_threshold() -> None:
    loaded = load_strategy(STRATEGIES / "lgbm_threshold.py")
    assert loaded.cls.model is not None and loaded.cls.model.alias == "champion"
    strategy = loaded.create()
    assert strategy.on_candle(context({}, probability=0.61)) is not None
    assert strategy.on_candle(context({}, probability=0.6)) is None  # must exceed
    assert strategy.on_candle(context({}, probability=None)) is None  # no model yet
    assert strategy.on_candle(context({}, probability=0.9, positions=1)) is None
