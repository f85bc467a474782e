"""Promotion in shadow mode on real training runs: a version passing the gates becomes
`challenger` (tagged for the engine's shadow runs, decision row alias `challenger`) while
the champion stays; a newer passing candidate is refused while that challenger is still in
shadow; re-running the decision changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from research.orchestration.common import DataInterval
from research.orchestration.lifecycle import (
    build_spec_dataset,
    promote_model,
    train_model,
    validate_model,
)
from research.training import Workspace, run
from tests.engine.model_store import ModelStore
from tests.training.helpers import MODEL, small_spec, to_toml
from tradepipe.db import create_engine_for, list_model_promotions, record_shadow, session_scope
from tradepipe.db.shadow import ShadowPositionRecord, ShadowRecord
from tradepipe.registry import CHALLENGER, SHADOW_STARTED_TAG, ModelRegistry

SHADOW = {
    "promotion.mode": "shadow",
    "promotion.min_days": 1.0,
    "promotion.min_decisions": 20,
    "promotion.min_trades": 5,
}


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


def test_the_lifecycle_promote_task_judges_the_challenger_first(
    workspace: Workspace, tmp_path: Path
) -> None:
    """After the test above: the challenger's shadow trades (recorded as an engine records
    them) beat the champion's live ones (none), so the promote task makes it champion and
    returns the verdict with both figures before it gates the newer candidate."""
    registry = ModelRegistry(workspace.tracking_uri)
    challenger = registry.alias(MODEL, CHALLENGER)
    assert challenger is not None
    started = datetime.now(UTC) - timedelta(days=2)
    record_trades(workspace.database_url, challenger.version, started)
    newer = tmp_path / "newer.toml"
    newer.write_text(to_toml(small_spec(**SHADOW, name="newer", **{"lightgbm.num_leaves": 7})))
    interval = DataInterval(datetime(2024, 3, 15, tzinfo=UTC), datetime(2024, 3, 16, tzinfo=UTC))

    data_ref = build_spec_dataset(str(newer), interval, workspace)
    validated = validate_model(train_model(data_ref, workspace), workspace)
    promoted = promote_model(validated, workspace)

    verdict = promoted["shadow_verdict"]
    assert verdict["status"] == "promoted" and verdict["challenger"] == challenger.version
    figures = verdict["figures"]
    assert figures["figure"] == "net_return_per_trade"
    assert figures["challenger_shadow"]["trades"] == 12
    assert figures["challenger_shadow"]["net_return_per_trade"] == pytest.approx(0.002)
    assert figures["champion_live"]["trades"] == 0
    assert registry.champion(MODEL).version == challenger.version  # type: ignore[union-attr]
    # then the newer candidate's decision (taken in the test above) is replayed, unchanged
    assert promoted["version"] != challenger.version and promoted["replayed"]
    assert not promoted["promoted"] and registry.alias(MODEL, CHALLENGER) is None


def record_trades(url: str, version: str, started: datetime) -> None:
    """12 closed shadow trades of bot b1, +0.2 % each after fees, 50 decisions."""
    start_ms = int(started.timestamp() * 1000)
    positions = tuple(
        ShadowPositionRecord(
            seq, "buy", "closed", 1.0, 100.0, 100.4, start_ms + seq * 60_000,
            start_ms + seq * 60_000, start_ms + seq * 90_000, "take_profit", 0.2, 0.4,
        )
        for seq in range(1, 13)
    )  # fmt: skip
    record = ShadowRecord(
        "b1", MODEL, version, "BTCUSDT", "hash", start_ms, start_ms + 3_600_000, 50, 12, positions
    )
    engine = create_engine_for(url)
    with session_scope(engine) as session:
        record_shadow(session, record)
    engine.dispose()
