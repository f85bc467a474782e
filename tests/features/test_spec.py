"""The feature spec: names, warm-up, a stable content hash, TOML round trips, validation."""

from __future__ import annotations

import tomllib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tradepipe.features import FeatureSpec, default_spec
from tradepipe.features import spec as spec_module

# The default spec's hash under IMPLEMENTATION_VERSION 1. If this changes, models trained
# with the default features no longer match: that must be a decision (bump the version
# constant when formulas change), never an accident of serialisation.
DEFAULT_HASH = "dbf7e011264a24f66310881b7ceb904aaa886dd6cdae14efdcccc56bd654a2b0"


def test_default_spec_names_at_least_twenty_distinct_features_in_a_fixed_order() -> None:
    spec = default_spec()
    names = spec.feature_names
    assert len(names) == 26
    assert len(set(names)) == len(names)
    assert names[:6] == ("ret_1", "ret_3", "ret_6", "ret_12", "ret_24", "close_sma_5")
    assert names[-5:] == ("body", "upper_wick", "lower_wick", "close_location", "log_range")


def test_warmup_is_the_latest_first_defined_row() -> None:
    spec = default_spec()
    assert spec.warmup == 30  # logret_std_30 needs 30 returns, i.e. 31 candles
    assert spec.warmup_by_feature["logret_std_30"] == 30
    assert spec.warmup_by_feature["close_sma_30"] == 29
    assert spec.warmup_by_feature["rsi_14"] == 14
    assert spec.warmup_by_feature["body"] == 0
    assert FeatureSpec.from_dict(_all_groups_empty() | {"candle_shape": True}).warmup == 0


def _all_groups_empty() -> dict[str, object]:
    return {
        "return_horizons": [],
        "sma_windows": [],
        "ema_spans": [],
        "volatility_windows": [],
        "rsi_periods": [],
        "momentum_periods": [],
        "volume_windows": [],
        "taker_net_flow": False,
        "taker_flow_windows": [],
    }


def test_content_hash_is_stable_and_covers_every_parameter() -> None:
    spec = default_spec()
    assert spec.content_hash == DEFAULT_HASH
    assert FeatureSpec.from_dict(dict(reversed(spec.to_dict().items()))).content_hash == (
        DEFAULT_HASH
    )
    changed = [
        spec.model_copy(update={field: value}).content_hash
        for field, value in [
            ("name", "other"),
            ("version", 2),
            ("sma_windows", (5, 10, 20)),
            ("taker_net_flow", False),
        ]
    ]
    assert len({DEFAULT_HASH, *changed}) == 5


def test_content_hash_changes_with_the_implementation_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(spec_module, "IMPLEMENTATION_VERSION", 2)
    assert FeatureSpec().content_hash != DEFAULT_HASH


def test_toml_round_trip_under_a_table() -> None:
    spec = FeatureSpec(name="hourly-v2", version=3, ema_spans=(), rsi_periods=(7, 14))
    document = tomllib.loads("[features]\n" + spec.to_toml())
    again = FeatureSpec.from_dict(document["features"])
    assert again == spec
    assert again.content_hash == spec.content_hash
    assert FeatureSpec.from_toml(spec.to_toml()) == spec


@settings(max_examples=50, deadline=None)
@given(
    horizons=st.lists(st.integers(1, 500), max_size=6, unique=True).map(sorted),
    windows=st.lists(st.integers(2, 500), max_size=4, unique=True).map(sorted),
    flags=st.tuples(st.booleans(), st.booleans()),
)
def test_any_valid_spec_survives_toml(
    horizons: list[int], windows: list[int], flags: tuple[bool, bool]
) -> None:
    spec = FeatureSpec(
        return_horizons=tuple(horizons),
        volatility_windows=tuple(windows),
        taker_net_flow=flags[0],
        candle_shape=flags[1],
    )
    assert FeatureSpec.from_toml(spec.to_toml()).content_hash == spec.content_hash


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"sma_windows": [10, 5]}, "strictly increasing without repeats, got \\[10, 5\\]"),
        ({"sma_windows": [5, 5]}, "write \\[5\\]"),
        ({"volatility_windows": [1]}, "greater than or equal to 2"),
        ({"rsi_periods": ["14"]}, "valid integer"),
        ({"rsi_periods": [14.0]}, "valid integer"),
        ({"candle_shape": 1}, "valid boolean"),
        ({"windows": [5]}, "Extra inputs are not permitted"),
        ({"name": "has space"}, "should match pattern"),
        (_all_groups_empty() | {"candle_shape": False}, "at least one feature"),
    ],
)
def test_invalid_specs_are_refused_with_the_reason(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        FeatureSpec.from_dict(data)


def test_model_copy_validates_and_recomputes_derived_values() -> None:
    spec = default_spec()
    assert spec.feature_names  # fill the caches of the original
    smaller = spec.model_copy(update={"sma_windows": (5,)})
    assert "close_sma_10" not in smaller.feature_names
    assert smaller.content_hash != spec.content_hash
    with pytest.raises(ValidationError, match="strictly increasing"):
        spec.model_copy(update={"sma_windows": (10, 5)})


def test_spec_is_frozen_and_hashable() -> None:
    spec = default_spec()
    with pytest.raises(ValidationError):
        spec.rsi_periods = (7,)  # type: ignore[misc]
    assert {spec: 1}[FeatureSpec()] == 1
