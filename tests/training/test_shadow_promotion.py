"""Promotion in shadow mode on real training runs: a version passing the gates becomes
`challenger` (tagged for the engine's shadow runs, decision row alias `challenger`) while
the champion stays; a newer passing candidate is refused while that challenger is still in
shadow; re-running the decision changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from research.training import Workspace, run
from tests.engine.model_store import ModelStore
from tests.training.helpers import MODEL, small_spec, to_toml
from tradepipe.db import create_engine_for, list_model_promotions, session_scope
from tradepipe.registry import CHALLENGER, SHADOW_STARTED_TAG, ModelRegistry

SHADOW = {"promotion.mode": "shadow", "promotion.min_days": 1.0}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, market_data: Path) -> Workspace:
    root = tmp_path_factory.mktemp("workspace")
    base = Workspace.under(root)
    return Workspace(base.tracking_uri, base.artifact_root, base.database_url, market_data)


def test_shadow_mode_makes_a_challenger_and_keeps_the_champion(
    workspace: Workspace, tmp_path: Path
) -> None:
    registry = ModelRegistry(workspace.tracking_uri)
    # a champion the backtest cannot load: the candidate beats it by rule, not by luck
    champion = ModelStore(workspace, registry).register(MODEL, corrupt=True)
    good, newer = tmp_path / "good.toml", tmp_path / "newer.toml"
    good.write_text(to_toml(small_spec(**SHADOW)))
    newer.write_text(to_toml(small_spec(**SHADOW, name="newer", **{"lightgbm.num_leaves": 7})))

    first = run(good, workspace=workspace)
    assert first.promoted and first.promotion.shadow, first.promotion.summary()
    assert "promoted to challenger" in first.promotion.summary()
    assert registry.champion(MODEL).version == champion  # type: ignore[union-attr]
    challenger = registry.alias(MODEL, CHALLENGER)
    assert challenger is not None and challenger.version == first.version
    assert SHADOW_STARTED_TAG in challenger.tags

    second = run(newer, workspace=workspace)
    assert second.version != first.version and not second.promoted
    failed = {gate.name for gate in second.promotion.gates if not gate.passed}
    assert failed == {"no_challenger_in_shadow"}
    assert registry.alias(MODEL, CHALLENGER).version == first.version  # type: ignore[union-attr]

    again = run(good, workspace=workspace)
    assert again.promotion.replayed and again.promoted and again.promotion.shadow
    assert registry.alias(MODEL, CHALLENGER).version == first.version  # type: ignore[union-attr]
    engine = create_engine_for(workspace.database_url)
    with session_scope(engine) as session:
        rows = {(row.version, row.alias, row.decision.value) for row in
                list_model_promotions(session, model_name=MODEL)}  # fmt: skip
    engine.dispose()
    assert rows == {(first.version, "challenger", "promoted"),
                    (second.version, "challenger", "refused")}  # fmt: skip
