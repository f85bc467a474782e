"""The guard gates through the real pipeline (MLflow SQLite store, trading database): a
strategy that peeks at the next candle is refused by promotion however good its figures, and
a pinned champion is never moved, the refusal recorded with the pin's reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from research.training import RunOutcome, Workspace, run
from tests.training.helpers import MODEL, small_spec, to_toml
from tradepipe.db import create_engine_for, list_model_promotions, session_scope
from tradepipe.enums import PromotionDecision
from tradepipe.model_ops import pin
from tradepipe.registry import ModelRegistry

# Consumes the model like the shipped strategy, but reaches around its frozen context into
# the backtester's frames and enters when the next candle closes higher.
PEEKING = """
import sys

import pandas as pd

from tradepipe.strategy import Enter, ModelRef, Strategy, StrategyParameters


class Peek(Strategy[StrategyParameters]):
    Parameters = StrategyParameters
    model = ModelRef("btcusdt_1m_triple_barrier", "champion")

    def on_candle(self, context):
        frame = sys._getframe(1)
        while frame is not None:
            for value in frame.f_locals.values():
                if isinstance(value, pd.DataFrame) and "close" in value.columns:
                    later = value[value["start_ms"] > context.candle.start_ms]
                    if len(later) and later["close"].iloc[0] > context.candle.close * 1.001:
                        return Enter(reason="knows the next close")
                    return None
            frame = frame.f_back
        return None
"""


def _spec(folder: Path, name: str, **changes: object) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(to_toml(small_spec(name=name, **changes)))
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("guard_gates")


@pytest.fixture(scope="module")
def peeking(folder: Path, workspace: Workspace) -> RunOutcome:
    strategy = folder / "peek.py"
    strategy.write_text(PEEKING)
    return run(_spec(folder, "peeking", **{"strategy.file": str(strategy)}), workspace=workspace)


def test_a_strategy_that_peeks_is_refused_by_promotion(
    peeking: RunOutcome, workspace: Workspace
) -> None:
    gates = {gate.name: gate for gate in peeking.promotion.gates}
    assert not peeking.promoted
    assert not gates["no_lookahead"].passed
    assert "decision at" in gates["no_lookahead"].detail
    assert "with the history ending at" in gates["no_lookahead"].detail
    assert any(reason.startswith("no_lookahead: ") for reason in peeking.reasons)
    assert ModelRegistry(workspace.tracking_uri).champion(MODEL) is None


def test_a_pinned_champion_is_not_moved_and_the_refusal_says_why(
    peeking: RunOutcome, folder: Path, workspace: Workspace
) -> None:
    first = run(_spec(folder, "first"), workspace=workspace)
    assert first.promoted, first.summary()
    registry = ModelRegistry(workspace.tracking_uri)
    engine = create_engine_for(workspace.database_url)
    try:
        with session_scope(engine) as session:
            pin(registry, MODEL, by="ops", reason="holding for the audit", session=session)
        # A different model that would otherwise be judged on its figures alone.
        second = run(_spec(folder, "second", **{"lightgbm.num_leaves": 7}), workspace=workspace)
        with session_scope(engine) as session:
            rows = {row.version: row for row in list_model_promotions(session, model_name=MODEL)}
    finally:
        engine.dispose()
    gates = {gate.name: gate for gate in second.promotion.gates}
    assert not second.promoted and not gates["champion_not_pinned"].passed
    assert f"pinned at version {first.version} by ops (holding for the audit)" in (
        gates["champion_not_pinned"].detail
    )
    assert second.promotion.champion == first.version
    champion = registry.champion(MODEL)
    assert champion is not None and champion.version == first.version
    refused = rows[second.version]
    assert refused.decision is PromotionDecision.REFUSED
    assert refused.reasons["champion_not_pinned"]["passed"] is False
    assert rows[first.version].reasons["champion_not_pinned"]["passed"] is True
