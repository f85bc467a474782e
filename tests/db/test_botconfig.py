"""BotConfig: a bad value is refused with a message naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tradepipe.botconfig import BotConfig, BotConfigError, parse_bot_config

VALID: dict[str, Any] = {
    "capital_per_trade": 100.0,
    "take_profit_pct": 1.0,
    "stop_loss_pct": 0.5,
    "max_holding_seconds": 3600,
    "maker_order_timeout_seconds": 30,
}


def test_defaults() -> None:
    config = parse_bot_config(VALID)
    assert config.max_open_positions == 1
    assert config.model_name is None
    assert config.model_alias == "champion"
    assert 0 < config.confidence_threshold < 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("capital_per_trade", 0),
        ("capital_per_trade", -5),
        ("take_profit_pct", 0),
        ("stop_loss_pct", -0.1),
        ("max_holding_seconds", 0),
        ("maker_order_timeout_seconds", -1),
        ("max_open_positions", 0),
        ("confidence_threshold", 0),
        ("confidence_threshold", 1),
        ("confidence_threshold", 1.5),
        ("model_name", ""),
        ("model_alias", ""),
        ("capital_per_trade", "lots"),
    ],
)
def test_bad_field_is_named(field: str, value: object) -> None:
    with pytest.raises(BotConfigError, match=rf"^invalid bot 'alpha': {field}: "):
        parse_bot_config({**VALID, field: value}, bot="alpha")


@pytest.mark.parametrize("field", sorted(VALID))
def test_missing_required_field_is_named(field: str) -> None:
    data = {key: value for key, value in VALID.items() if key != field}
    with pytest.raises(BotConfigError, match=rf"{field}: Field required"):
        parse_bot_config(data)


def test_unknown_field_is_refused_by_name() -> None:
    with pytest.raises(BotConfigError, match="take_proft_pct: Extra inputs are not permitted"):
        parse_bot_config({**VALID, "take_proft_pct": 2})


def test_every_bad_field_is_reported_at_once() -> None:
    with pytest.raises(BotConfigError) as raised:
        parse_bot_config({**VALID, "take_profit_pct": 0, "stop_loss_pct": 0})
    assert "take_profit_pct" in str(raised.value)
    assert "stop_loss_pct" in str(raised.value)


def test_config_is_frozen() -> None:
    config = parse_bot_config(VALID)
    with pytest.raises(ValidationError, match="frozen"):
        config.take_profit_pct = 2.0  # type: ignore[misc]


@settings(max_examples=50, deadline=None)
@given(
    capital=st.floats(min_value=1e-6, max_value=1e9),
    threshold=st.floats(min_value=1e-6, max_value=1 - 1e-6),
    positions=st.integers(min_value=1, max_value=100),
    model_name=st.none() | st.text(min_size=1, max_size=20),
)
def test_valid_configs_round_trip_through_json(
    capital: float, threshold: float, positions: int, model_name: str | None
) -> None:
    config = BotConfig.model_validate(
        {
            **VALID,
            "capital_per_trade": capital,
            "confidence_threshold": threshold,
            "max_open_positions": positions,
            "model_name": model_name,
        }
    )
    assert parse_bot_config(config.model_dump(mode="json")) == config
    assert BotConfig.model_validate_json(config.model_dump_json()) == config


@pytest.mark.parametrize("timeframe", ["1s", "1m", "1h", "1d", "7d"])
def test_the_backtests_default_config_is_within_the_bounds(timeframe: str) -> None:
    from research.backtest.strategy_file import default_config
    from tradepipe.timeframes import parse_timeframe

    config = default_config(parse_timeframe(timeframe))  # up to the longest timeframe
    assert parse_bot_config(config.model_dump()) == config


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("capital_per_trade", float("inf")),
        ("capital_per_trade", 1e9 + 1),
        ("take_profit_pct", 1e308),
        ("stop_loss_pct", 100.0),
        ("max_holding_seconds", float("nan")),
        ("max_holding_seconds", 1e300),
        ("maker_order_timeout_seconds", 30 * 86_400 + 1),
        ("max_open_positions", 1_001),
    ],
)
def test_numbers_outside_the_documented_bounds_are_refused(field: str, value: float) -> None:
    with pytest.raises(BotConfigError, match=field):
        parse_bot_config({**VALID, field: value})
