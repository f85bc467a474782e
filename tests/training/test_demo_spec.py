"""The demo spec on the synthetic market earns its promotion net of the paper broker's costs:
the market's flow bursts (tradepipe/synthetic.py) are an edge wider than a round trip."""

from __future__ import annotations

import tomllib

import pytest

from research.training import RunOutcome, Workspace, run
from tests.training.helpers import DEMO_SPEC, MODEL, small_spec, to_toml
from tradepipe.costs import PAPER_COSTS
from tradepipe.db import create_engine_for, list_model_promotions, session_scope

DEMO = tomllib.loads(DEMO_SPEC.read_text())


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory, workspace: Workspace) -> RunOutcome:
    """The demo spec made small (two weeks), at the demo bot's own threshold and no [fees]."""
    threshold = DEMO["strategy"]["bot"]["confidence_threshold"]
    path = tmp_path_factory.mktemp("demo") / "demo.toml"
    path.write_text(to_toml(small_spec(**{"strategy.bot.confidence_threshold": threshold})))
    return run(path, workspace=workspace)


def test_the_demo_spec_declares_no_cost_of_its_own() -> None:
    assert "fees" not in DEMO


def test_its_barriers_clear_the_paper_round_trip() -> None:
    labels = DEMO["labels"]
    assert labels["take_profit_pct"] / 100 > PAPER_COSTS.round_trip


def test_the_demo_model_is_promoted_at_paper_costs(
    outcome: RunOutcome, workspace: Workspace
) -> None:
    assert outcome.promoted, outcome.reasons
    engine = create_engine_for(workspace.database_url)
    with session_scope(engine) as session:
        [row] = list_model_promotions(session, model_name=MODEL)
    engine.dispose()
    assert row.metrics["costs"] == PAPER_COSTS.to_dict()


def test_its_validation_backtest_is_net_positive_after_costs(outcome: RunOutcome) -> None:
    metrics = outcome.train.metrics
    trades = metrics["val/bt/trades"]
    assert trades >= 5
    capital = DEMO["strategy"]["bot"]["capital_per_trade"]
    # every trade paid the taker fee in and at least the maker fee out
    assert metrics["val/bt/fees"] >= trades * capital * 2 * PAPER_COSTS.maker_rate * 0.95
    assert metrics["val/bt/total_return"] > 0
    assert metrics["val/bt/profit_factor"] > 1
