"""Bot management on SQLite and PostgreSQL: validation before writing, history never lost."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from tradepipe.botconfig import BotConfig
from tradepipe.bots import BotError, NewBot, add_bot, remove_bot, set_enabled
from tradepipe.db import Order, Position, Strategy, get_bot
from tradepipe.enums import (
    BotMode,
    OrderRole,
    OrderType,
    PositionStatus,
    Side,
    StrategyStatus,
)

STRATEGIES = Path(__file__).resolve().parents[2] / "strategies"
CONFIG = BotConfig(
    capital_per_trade=100,
    take_profit_pct=1,
    stop_loss_pct=1,
    max_holding_seconds=3600,
    maker_order_timeout_seconds=60,
)


def new(name: str = "alpha", **changes: object) -> NewBot:
    fields: dict[str, object] = {
        "name": name, "strategy": "ema_rsi", "symbol": "btc/usdt", "timeframe": "60s",
        "config": CONFIG,
    } | changes  # fmt: skip
    return NewBot(**fields)  # type: ignore[arg-type]


def test_add_normalises_and_stores(session: Session) -> None:
    view = add_bot(session, new(), STRATEGIES)
    stored = (view.symbol, view.timeframe, view.mode, view.enabled)
    assert stored == ("BTCUSDT", "1m", BotMode.PAPER, True)
    assert view.config == CONFIG
    assert set_enabled(session, "alpha", False).enabled is False


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": "has space"}, "bot name"),
        ({"name": "x" * 21}, "bot name"),
        ({"strategy": "nope"}, "unknown strategy 'nope': known strategies are ema_rsi"),
        ({"timeframe": "7m"}, "not supported live"),
        ({"timeframe": "soon"}, "unknown timeframe"),
        ({"symbol": "BTC USDT!"}, "symbol"),
        ({"mode": BotMode.LIVE}, "needs the name of a credential set"),
    ],
)
def test_bad_bots_are_refused_before_writing(
    session: Session, changes: dict[str, object], message: str
) -> None:
    fields = {"name": "beta"} | changes
    with pytest.raises(BotError, match=message):
        add_bot(session, new(**fields), STRATEGIES)  # type: ignore[arg-type]
    assert get_bot(session, str(fields["name"])) is None


def test_duplicate_name_and_unknown_bot(session: Session) -> None:
    add_bot(session, new(), STRATEGIES)
    with pytest.raises(BotError, match="exists already"):
        add_bot(session, new(), STRATEGIES)
    with pytest.raises(BotError, match="no bot called 'ghost'"):
        set_enabled(session, "ghost", True)


def test_strategy_known_only_to_the_registry_or_broken(session: Session, tmp_path: Path) -> None:
    session.add(
        Strategy(name="registered", file_path="x.py", class_name="X", content_hash="a" * 64)
    )
    session.add(Strategy(name="broken", file_path="b.py", class_name="B", content_hash="b" * 64,
                         status=StrategyStatus.INVALID, error="b.py:3: syntax error"))  # fmt: skip
    session.flush()
    assert add_bot(session, new("r", strategy="registered"), tmp_path).strategy_name == "registered"
    with pytest.raises(BotError, match=r"is invalid: b\.py:3: syntax error"):
        add_bot(session, new("b", strategy="broken"), tmp_path)
    (tmp_path / "bad.py").write_text("def oops(:\n")
    with pytest.raises(BotError, match="does not load"):
        add_bot(session, new("c", strategy="bad"), tmp_path)


def test_a_bot_with_history_is_never_deleted(session: Session) -> None:
    add_bot(session, new("fresh"), STRATEGIES)
    remove_bot(session, "fresh")
    assert get_bot(session, "fresh") is None

    bot = add_bot(session, new("trader"), STRATEGIES)
    position = Position(bot_id=bot.id, symbol="BTCUSDT", side=Side.BUY, quantity=0.01,
                        status=PositionStatus.ACTIVE, strategy_hash="a" * 64)  # fmt: skip
    session.add(position)
    session.flush()
    with pytest.raises(BotError, match="1 open position"):
        remove_bot(session, "trader")
    position.status = PositionStatus.CLOSED
    position.exit_reason = "take_profit"  # type: ignore[assignment]
    position.closed_at = datetime(2024, 1, 1, tzinfo=UTC)
    session.add(Order(client_order_id="trader-1-en", bot_id=bot.id, position_id=position.id,
                      symbol="BTCUSDT", side=Side.BUY, order_type=OrderType.MARKET, quantity=0.01,
                      role=OrderRole.ENTRY, strategy_hash="a" * 64))  # fmt: skip
    session.flush()
    with pytest.raises(BotError, match="trading history"):
        remove_bot(session, "trader")
    assert get_bot(session, "trader") is not None
