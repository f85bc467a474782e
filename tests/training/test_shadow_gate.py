"""The shadow gate on recorded results: a challenger whose shadow trades beat the champion's
live trades on the same bots and window is promoted, a worse one refused (its alias
removed), both with both figures in a model_promotions row and on the version's tags; it
waits (records nothing) before min_days and min_decisions; a pinned champion never moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from research.training import Workspace, load_spec, parse_spec
from research.training.shadow_gate import judge_challenger
from research.training.spec import ModelSpec, PromotionSection, SpecError
from tests.engine.helpers import add_bots, write_strategies
from tests.engine.model_store import ModelStore
from tradepipe.db import (
    Bot,
    ExitReason,
    ModelPromotion,
    Position,
    PositionStatus,
    Side,
    create_engine_for,
    record_shadow,
    session_scope,
    upgrade_database,
)
from tradepipe.db.shadow import ShadowPositionRecord, ShadowRecord
from tradepipe.registry import CHALLENGER, PIN_TAGS

MODEL = "shadow_gate_model"
REPO = Path(__file__).resolve().parents[2]
START = datetime(2024, 3, 1, tzinfo=UTC)
NOW = START + timedelta(days=3)
HOUR_MS = 3_600_000


@pytest.fixture
def setup(tmp_path: Path) -> tuple[ModelSpec, Workspace, ModelStore, str, str]:
    store = ModelStore.under(tmp_path)
    workspace = store.workspace
    upgrade_database(workspace.database_url)
    add_bots(
        workspace.database_url,
        write_strategies(tmp_path / "strategies"),
        [("b1", "lgbm_threshold"), ("b2", "lgbm_threshold")],
        model_name=MODEL,
    )
    champion = store.register(MODEL)
    challenger = store.register(MODEL, seed=2, champion=False)
    store.registry.start_shadow(MODEL, challenger, at=START)
    spec = load_spec(REPO / "research" / "specs" / "btcusdt_1m.toml")
    promotion = PromotionSection(mode="shadow", min_days=2, min_decisions=40, min_trades=4)
    spec = spec.model_copy(update={"registered_model": MODEL, "promotion": promotion})
    return spec, workspace, store, champion, challenger


def start_ms(hours: float) -> int:
    return int(START.timestamp() * 1000 + hours * HOUR_MS)


def record(url: str, version: str, net_returns: list[float], decisions: int = 50) -> None:
    """Shadow runs of b1 and b2: closed trades of 100 quote each with these net returns."""
    engine = create_engine_for(url)
    with session_scope(engine) as session:
        for bot in ("b1", "b2"):
            positions = tuple(
                ShadowPositionRecord(
                    seq=index + 1,
                    side="buy",
                    status="closed",
                    quantity=1.0,
                    entry_price=100.0,
                    exit_price=100.0 + value * 100 + 0.2,
                    placed_ms=start_ms(index + 1),
                    opened_ms=start_ms(index + 1),
                    closed_ms=start_ms(index + 1.5),
                    exit_reason="take_profit",
                    fees=0.2,
                    realised_pnl=value * 100 + 0.2,
                )
                for index, value in enumerate(net_returns)
            )
            record_shadow(
                session,
                ShadowRecord(
                    bot, MODEL, version, "BTCUSDT", "hash", start_ms(0), start_ms(60),
                    decisions // 2, len(positions), positions,
                ),
            )  # fmt: skip
    engine.dispose()


def live(url: str, version: str, net_returns: list[float], *, before: bool = False) -> None:
    """Closed live positions of b1 by `version` (in the window, or before it)."""
    engine = create_engine_for(url)
    with session_scope(engine) as session:
        bot = session.query(Bot).filter_by(name="b1").one()
        for index, value in enumerate(net_returns):
            opened = (
                START + timedelta(hours=index + 1) - (timedelta(days=5) if before else timedelta())
            )
            session.add(
                Position(
                    bot_id=bot.id, symbol="BTCUSDT", side=Side.BUY, status=PositionStatus.CLOSED,
                    quantity=1.0, entry_price=100.0, exit_price=100.0 + value * 100 + 0.2,
                    opened_at=opened, closed_at=opened + timedelta(minutes=30),
                    exit_reason=ExitReason.TAKE_PROFIT, fees=0.2, realised_pnl=value * 100 + 0.2,
                    strategy_hash="hash", model_version=version,
                )
            )  # fmt: skip
    engine.dispose()


def decisions(url: str, version: str) -> list[ModelPromotion]:
    engine = create_engine_for(url)
    with session_scope(engine) as session:
        rows = session.query(ModelPromotion).filter_by(version=version).all()
        session.expunge_all()
    engine.dispose()
    return rows


def test_a_better_challenger_is_promoted_with_both_figures(setup) -> None:  # type: ignore[no-untyped-def]
    spec, workspace, store, champion, challenger = setup
    url = workspace.database_url
    record(url, challenger, [0.004, 0.002, 0.003])  # 6 trades over two bots, 0.3 % a trade
    live(url, champion, [0.001, -0.002, 0.0005])
    live(url, champion, [0.05] * 5, before=True)  # before the window: not compared

    early = judge_challenger(spec, workspace, now=START + timedelta(days=1))
    assert early.status == "waiting" and "1.00 of 2 days" in early.detail
    assert decisions(url, challenger) == []

    verdict = judge_challenger(spec, workspace, now=NOW)
    assert verdict.status == "promoted", verdict.detail
    assert store.registry.champion(MODEL).version == challenger  # type: ignore[union-attr]
    assert store.registry.alias(MODEL, CHALLENGER) is None
    [row] = decisions(url, challenger)
    assert row.alias == "champion" and row.decision.value == "promoted"
    shadow, champion_live = row.metrics["challenger_shadow"], row.metrics["champion_live"]
    assert row.metrics["figure"] == "net_return_per_trade"
    assert shadow["trades"] == 6 and shadow["net_return_per_trade"] == pytest.approx(0.003)
    assert champion_live["trades"] == 3
    assert champion_live["net_return_per_trade"] == pytest.approx(-0.0005 / 3)
    gate = row.reasons["shadow_beats_champion"]
    assert gate["passed"] and gate["value"] == pytest.approx(0.003 + 0.0005 / 3)
    tags = store.registry.version(MODEL, challenger).tags
    assert tags["shadow_decision"] == "promoted" and "challenger 0.3000%" in tags["shadow_figures"]


def test_a_worse_challenger_is_refused_with_both_figures(setup) -> None:  # type: ignore[no-untyped-def]
    spec, workspace, store, champion, challenger = setup
    url = workspace.database_url
    record(url, challenger, [-0.001, 0.0005, -0.002])
    live(url, champion, [0.001, 0.002])
    verdict = judge_challenger(spec, workspace, now=NOW)
    assert verdict.status == "refused"
    assert "shadow_beats_champion" in verdict.detail and "vs champion version" in verdict.detail
    assert store.registry.champion(MODEL).version == champion  # type: ignore[union-attr]
    assert store.registry.alias(MODEL, CHALLENGER) is None  # the engine stops shadowing it
    [row] = decisions(url, challenger)
    assert row.decision.value == "refused"
    assert row.metrics["challenger_shadow"]["net_return_per_trade"] == pytest.approx(-0.0025 / 3)
    assert row.metrics["champion_live"]["net_return_per_trade"] == pytest.approx(0.0015)
    assert store.registry.version(MODEL, challenger).tags["shadow_decision"] == "refused"
    again = judge_challenger(spec, workspace, now=NOW)
    assert again.status == "no_challenger" and len(decisions(url, challenger)) == 1


def test_too_few_trades_or_a_pin_refuse(setup) -> None:  # type: ignore[no-untyped-def]
    spec, workspace, store, champion, challenger = setup
    record(workspace.database_url, challenger, [0.01])  # 2 trades, needs 4
    store.registry.set_model_tags(MODEL, {PIN_TAGS[0]: champion, PIN_TAGS[2]: "freeze"})
    verdict = judge_challenger(spec, workspace, now=NOW)
    assert verdict.status == "refused"
    failed = {gate.name for gate in verdict.gates if not gate.passed}
    assert failed == {"shadow_min_trades", "champion_not_pinned"}
    assert store.registry.champion(MODEL).version == champion  # type: ignore[union-attr]


def test_shadow_settings_need_shadow_mode() -> None:
    text = (REPO / "research" / "specs" / "btcusdt_1m.toml").read_text()
    with pytest.raises(SpecError, match='min_days apply to mode = "shadow" only'):
        parse_spec(text + "\n[promotion]\nmin_days = 3\n")
    with pytest.raises(SpecError, match="mode"):
        parse_spec(text + '\n[promotion]\nmode = "sideways"\n')
    spec = parse_spec(text + '\n[promotion]\nmode = "shadow"\nmin_decisions = 10\n')
    assert spec.promotion.shadow and spec.promotion.min_decisions == 10
    assert spec.content_hash == parse_spec(text).content_hash  # what the version is
