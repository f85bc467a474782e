"""Gates judge a model at the costs its bots trade at: the venue's (paper by default),
raised by a spec's [fees], never lowered; and the costs used are recorded with the decision."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from research.marketdata.load import CandleData
from research.training import RunOutcome, SpecError, Workspace, load_spec, run
from research.training.context import load_context
from research.training.evaluate import Window, backtest_window
from research.training.train import COSTS_TAG
from tests.training.helpers import MODEL, SpecWriter, small_spec, to_toml
from tradepipe.config import Settings
from tradepipe.costs import PAPER_COSTS, TradingCosts, paper_costs
from tradepipe.db import create_engine_for, list_model_promotions, session_scope
from tradepipe.registry import ModelRegistry

ZERO_FEES = {"fees.maker_rate": 0.0, "fees.taker_rate": 0.0, "fees.slippage_bps": 0.0}
DEARER = {"fees.maker_rate": 0.0005, "fees.taker_rate": 0.002, "fees.slippage_bps": 5.0}


def always_enter(features: pd.DataFrame) -> np.ndarray:
    """A model that is always sure: the strategy enters whenever it may."""
    return np.full(len(features), 0.99)


def test_a_spec_cannot_lower_its_venues_costs(write_spec: SpecWriter) -> None:
    spec = load_spec(write_spec(**ZERO_FEES))
    assert spec.trading_costs(PAPER_COSTS) == PAPER_COSTS


def test_a_spec_adds_costs_per_component(write_spec: SpecWriter) -> None:
    spec = load_spec(write_spec(**DEARER))
    # maker stays at the venue's 0.1 % (the spec's 0.05 % is lower), the rest go up
    assert spec.trading_costs(PAPER_COSTS) == TradingCosts(0.001, 0.002, 5.0)


def test_the_venue_is_the_paper_broker_with_its_settings() -> None:
    assert Workspace.under(Path("unused")).venue_costs == PAPER_COSTS
    settings = Settings(paper_taker_fee_rate=0.003, paper_slippage_bps=1.0)
    assert paper_costs(settings) == TradingCosts(0.001, 0.003, 1.0)
    assert paper_costs(Settings()) == PAPER_COSTS


def test_bad_spec_costs_are_refused_naming_the_field(write_spec: SpecWriter) -> None:
    with pytest.raises(SpecError, match=r"fees\.slippage_bps"):
        load_spec(write_spec(**{"fees.slippage_bps": -1.0}))


def test_backtests_pay_the_venues_costs_and_a_dearer_spec_pays_more(
    write_spec: SpecWriter, candles: CandleData, workspace: Workspace
) -> None:
    def fees_and_return(changes: dict[str, float]) -> tuple[float, float]:
        path = write_spec(f"{len(changes)}.toml", **changes)
        context = load_context(path, candles, workspace)
        first = int(context.dataset.rows[0])
        window = Window(first, first + 2_000)
        figures = backtest_window(
            context.dataset,
            window,
            context.spec,
            context.strategy,
            always_enter,
            costs=context.costs,
        )
        return figures["fees"], figures["total_return"]

    declared_free, free_return = fees_and_return(ZERO_FEES)
    default, _ = fees_and_return({})
    dearer, dearer_return = fees_and_return(DEARER)
    assert declared_free == default > 0  # zero fees declared: the paper broker's still paid
    assert dearer > default
    assert dearer_return < free_return


def test_other_venue_costs_are_another_training_run(
    write_spec: SpecWriter, candles: CandleData, workspace: Workspace
) -> None:
    path = write_spec()
    paper = load_context(path, candles, workspace)
    dearer_venue = Workspace(
        workspace.tracking_uri,
        workspace.artifact_root,
        workspace.database_url,
        workspace.market_data_dir,
        venue_costs=TradingCosts(0.001, 0.001, 10.0),
    )
    assert load_context(path, candles, dearer_venue).train_key != paper.train_key


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory, workspace: Workspace) -> RunOutcome:
    """A spec declaring zero fees, run through train, validate and promote."""
    path = tmp_path_factory.mktemp("costs") / "zero_fees.toml"
    path.write_text(to_toml(small_spec(name="zero_fees", **ZERO_FEES)))
    return run(path, workspace=workspace)


def test_the_costs_used_are_recorded_with_the_decision(
    outcome: RunOutcome, workspace: Workspace
) -> None:
    engine = create_engine_for(workspace.database_url)
    with session_scope(engine) as session:
        [row] = list_model_promotions(session, model_name=MODEL)
    engine.dispose()
    assert row.version == outcome.version
    assert row.metrics["costs"] == PAPER_COSTS.to_dict()
    assert outcome.train.metrics["val/bt/fees"] > 0

    client = MlflowClient(workspace.tracking_uri, workspace.tracking_uri)
    logged = client.get_run(outcome.train.run_id).data
    assert logged.params["costs.taker_rate"] == "0.001"
    assert logged.params["costs.slippage_bps"] == "2.0"
    assert logged.params["fees.taker_rate"] == "0.0"  # what the spec asked for, overruled
    assert TradingCosts.from_dict(json.loads(logged.tags[COSTS_TAG])) == PAPER_COSTS
    version = ModelRegistry(workspace.tracking_uri).version(MODEL, outcome.version)
    assert TradingCosts.from_dict(json.loads(version.tags["costs"])) == PAPER_COSTS
