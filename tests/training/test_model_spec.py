"""Model specs: the demo spec is valid, and every bad spec ends in one line naming the
field and the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from research.training import ModelSpec, SpecError, load_spec, parse_spec
from research.training.evaluate import load_consuming_strategy
from tests.training.helpers import DEMO_SPEC, MODEL, SpecWriter, small_spec, to_toml


def test_the_demo_spec_is_valid_and_matches_the_shipped_strategy() -> None:
    spec = load_spec(DEMO_SPEC)
    assert spec.registered_model == MODEL
    assert spec.timeframe == "1m" and spec.symbol == "BTCUSDT"
    assert spec.bot_config.take_profit_pct == spec.labels.take_profit_pct
    assert spec.bot_config.model_name == MODEL
    assert spec.walk_forward.purge_seconds >= spec.labels.max_holding_seconds
    assert len(spec.content_hash) == 64
    assert spec.guard is not None and spec.guard.precision_margin == 0.1


def test_the_hash_follows_the_content_not_the_spelling(write_spec: SpecWriter) -> None:
    first = load_spec(write_spec("a.toml"))
    again = load_spec(write_spec("b.toml"))
    changed = load_spec(write_spec("c.toml", **{"lightgbm.num_leaves": 7}))
    assert first.content_hash == again.content_hash
    assert first.content_hash != changed.content_hash
    assert changed.flat_params()["lightgbm.num_leaves"] == "7"


def test_an_unknown_top_level_field_is_named_with_the_file(write_spec: SpecWriter) -> None:
    path = write_spec(registerd_model="typo")
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    message = str(caught.value)
    assert str(path) in message and "unknown field 'registerd_model'" in message
    assert "\n" not in message


def test_an_unknown_nested_field_lists_the_allowed_ones(write_spec: SpecWriter) -> None:
    with pytest.raises(SpecError, match=r"unknown field 'guard.min_outcome' \(allowed: "):
        load_spec(write_spec(**{"guard.min_outcome": 7}))
    with pytest.raises(SpecError, match=r"unknown field 'lightgbm.num_leafs' \(allowed: "):
        load_spec(write_spec(**{"lightgbm.num_leafs": 7}))
    with pytest.raises(SpecError, match=r"unknown field 'strategy\.bot\.take_profit_pct'"):
        load_spec(write_spec(**{"strategy.bot.take_profit_pct": 1.0}))
    with pytest.raises(SpecError, match=r"unknown field 'features\.return_horizon'"):
        load_spec(write_spec(**{"features.return_horizon": [1]}))


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"walk_forward.purge_seconds": 60.0}, "walk_forward.purge_seconds = 60 is shorter"),
        ({"walk_forward.embargo_seconds": 0.0}, "walk_forward.embargo_seconds = 0 is shorter"),
        ({"gates.min_sharpe": None}, "set min_sharpe or min_profit_factor"),
        ({"labels.take_profit_pct": -1.0}, "labels.take_profit_pct"),
        ({"timeframe": "7x"}, "unknown timeframe '7x'"),
        ({"labels": None}, "missing field 'labels'"),
        ({"data.end": "2023-01-01"}, "must be after start"),
        ({"gates.compare_metric": "luck"}, "gates.compare_metric"),
        ({"guard.alpha": 0.9}, "guard.alpha"),
        ({"guard.budget_outcomes": 5}, "budget_outcomes (5) must be at least min_outcomes"),
        (
            {
                "guard.max_drawdown_pct": None,
                "guard.max_psi": None,
                "guard.hit_rate_margin": None,
                "guard.precision_margin": None,
            },
            "guard: set at least one rail",
        ),
    ],
)
def test_invalid_values_are_refused(
    write_spec: SpecWriter, changes: dict[str, object], fragment: str
) -> None:
    with pytest.raises(SpecError, match=r"spec\.toml") as caught:
        load_spec(write_spec(**changes))
    assert fragment in str(caught.value)


def test_unreadable_specs(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no such spec file"):
        load_spec(tmp_path / "missing.toml")
    with pytest.raises(SpecError, match="not valid TOML"):
        parse_spec("name = ", source="broken.toml")


def test_the_strategy_must_consume_the_registered_model(write_spec: SpecWriter) -> None:
    spec = load_spec(write_spec(registered_model="someone_elses_model"))
    with pytest.raises(SpecError, match="consumes model 'btcusdt_1m_triple_barrier'"):
        load_consuming_strategy(spec)


def test_strategy_parameters_are_validated_by_the_strategy(write_spec: SpecWriter) -> None:
    spec = load_spec(write_spec(**{"strategy.parameters": {"limit_offset": 1.0}}))
    with pytest.raises(SpecError, match="limit_offset"):
        load_consuming_strategy(spec)


def test_a_spec_round_trips_through_the_model() -> None:
    spec = parse_spec(to_toml(small_spec()))
    assert ModelSpec.model_validate(spec.model_dump()) == spec


def test_a_trailing_stop_in_labels_reaches_the_bot_and_leaves_other_hashes(
    write_spec: SpecWriter,
) -> None:
    plain = load_spec(write_spec("a.toml"))
    trailing = load_spec(write_spec("b.toml", **{"labels.trailing_stop_pct": 1.5}))
    assert plain.labels.trailing_stop_pct is None and plain.bot_config.trailing_stop_pct is None
    assert trailing.bot_config.trailing_stop_pct == 1.5
    assert trailing.content_hash != plain.content_hash
    body = plain.model_dump(mode="json", exclude={"features"})
    assert "trailing_stop_pct" in body["labels"]  # yet left out of the hash while None
    with pytest.raises(SpecError, match="trailing_stop_pct"):
        load_spec(write_spec("c.toml", **{"labels.trailing_stop_pct": 0}))
