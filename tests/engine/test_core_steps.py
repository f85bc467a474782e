"""The trading core as a synchronous state machine, driven by hand on a simulated clock:
no event loop, no database, no feed. Trades go in; closed candles, decisions, recorder
writes (the events) and broker commands come out; a fill report opens the position; the
trading flag and the kill switch gate entries."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from live.brokers import (
    OrderAcceptedReport,
    OrderCancelledReport,
    OrderFilledReport,
    PaperBroker,
)
from live.engine.bot import BotRow, BotRuntime
from live.engine.clock import SimulatedClock
from live.engine.config import EngineConfig
from live.engine.core import TradingCore
from live.engine.events import EventBus
from live.engine.features import NoBackfill
from live.engine.outbox import BrokerCommand
from live.engine.persistence import BotBatch
from live.engine.recorder import Recorder
from live.engine.status import BotRunState, KillSwitchState
from live.feeds import SecondCandles
from tests.engine.helpers import START_MS, bot_config
from tradepipe.botconfig import parse_bot_config
from tradepipe.domain import Side, Trade
from tradepipe.enums import PositionStatus
from tradepipe.features import default_spec
from tradepipe.orders import Liquidity, PositionBook
from tradepipe.strategy import load_strategy

ALWAYS = """
    from tradepipe.strategy import Enter, Strategy, StrategyParameters

    class Always(Strategy[StrategyParameters]):
        def on_candle(self, context):
            return Enter(reason="always") if context.can_enter else None
"""


class ListRecorder:
    """The recorder's face the core sees: writes kept in a list, always available."""

    available = True

    def __init__(self) -> None:
        self.writes: list[object] = []

    def submit(self, write: object) -> int:
        self.writes.append(write)
        return len(self.writes)

    def events(self, kind: str) -> list[object]:
        found = []
        for write in self.writes:
            if isinstance(write, BotBatch):
                found += [event for event in write.events if event.kind == kind]
        return found


class Harness:
    def __init__(self, folder: Path) -> None:
        self.clock = SimulatedClock()
        self.recorder = ListRecorder()
        self.commands: list[BrokerCommand] = []
        config = EngineConfig(
            database_url=f"sqlite:///{folder}/unused.db", strategies_dir=folder, rest_url=None
        )
        recorder: Recorder = self.recorder  # type: ignore[assignment]
        self.core = TradingCore(
            config,
            broker=PaperBroker(clock=self.clock.now),
            recorder=recorder,
            bus=EventBus(),
            seconds=lambda on_candle: SecondCandles(on_candle, NoBackfill()),
            clock=self.clock,
            commands=self.commands.append,
        )
        path = folder / "always.py"
        path.write_text(textwrap.dedent(ALWAYS))
        settings = parse_bot_config(bot_config(max_holding_seconds=600.0))
        row = BotRow(1, "a", "always", "BTCUSDT", "1s", settings, True)
        book = PositionBook.for_bot(row.name, row.symbol, settings, config.fees, simulated=False)
        self.bot = BotRuntime(row, load_strategy(path), book)
        self.core.add_bot(self.bot)
        self.core.join_pipeline(self.bot)
        self.bot.features = self.core.symbols["BTCUSDT"].join("a", "1s", default_spec())
        self.core.refresh_state(self.bot)
        self.seq = 0

    def trade(self, second: int, price: float = 100.0) -> None:
        self.seq += 1
        time_ms = START_MS + second * 1_000
        self.core.on_trade(Trade("BTCUSDT", time_ms, price, 0.1, Side.BUY, self.seq))

    def run_until_ready(self) -> int:
        second = 0
        while not (self.bot.features and self.bot.features.ready):
            self.trade(second, 100.0 + (second % 5) * 0.1)
            second += 1
            assert second < 2_000, "the default features never became ready"
        return second


def test_a_trade_closing_a_candle_decides_and_sends_the_entry_after_its_write(
    tmp_path: Path,
) -> None:
    harness = Harness(tmp_path)
    core, bot = harness.core, harness.bot
    assert bot.state is BotRunState.WARMING_UP
    second = harness.run_until_ready()
    assert harness.commands == [], "no entry while the trading flag is down"
    assert core.metrics.entries_blocked > 0

    core.set_trading(True)
    harness.trade(second)
    harness.trade(second + 1)  # closes the candle of `second`: a decision, an entry
    assert bot.state is BotRunState.RUNNING
    assert len(harness.commands) == 1
    entry = harness.commands[0]
    assert entry.entry and entry.bot == "a" and entry.order is not None
    # the broker command comes after the write that records its intent
    assert len(harness.recorder.events("order_placed")) == 1
    intent = harness.recorder.writes[entry.after_seq - 1]
    assert isinstance(intent, BotBatch) and intent.bot == "a"
    assert any(event.kind == "order_placed" for event in intent.events)

    time_ms = harness.clock.now_or(0)
    core.on_report(OrderAcceptedReport(entry.client_order_id, time_ms, "x-1"))
    fill = OrderFilledReport(
        entry.client_order_id, time_ms, 100.0, entry.order.quantity, 0.01, Liquidity.TAKER, "f1"
    )
    core.on_report(fill)
    assert [p.status for p in bot.book.positions] == [PositionStatus.ACTIVE]
    assert len(harness.recorder.events("position_opened")) == 1


def test_the_kill_switch_closes_pending_entries_and_blocks_new_ones(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    core, bot = harness.core, harness.bot
    second = harness.run_until_ready()
    core.set_trading(True)
    harness.trade(second)
    harness.trade(second + 1)
    assert [p.status for p in bot.book.positions] == [PositionStatus.PENDING]
    sent = len(harness.commands)

    closed = core.engage_kill_switch(KillSwitchState(True, "test"))
    assert closed == 1 and core.kill_switch.engaged
    cancel = harness.commands[sent]  # the pending entry's cancel goes out to the broker
    assert cancel.order is None and cancel.client_order_id == harness.commands[0].client_order_id
    time_ms = harness.clock.now_or(0)
    core.on_report(OrderCancelledReport(cancel.client_order_id, time_ms))
    assert list(bot.book.positions) == []
    assert len(harness.recorder.events("position_closed")) == 1
    assert not core.accepting_entries(bot)
    sent = len(harness.commands)
    for offset in range(2, 6):
        harness.trade(second + offset)
    new_entries = [c for c in harness.commands[sent:] if c.entry]
    assert new_entries == [], "no entry while the kill switch is engaged"

    core.release_kill_switch()
    assert core.accepting_entries(bot)


def test_time_passing_on_the_simulated_clock_closes_the_candle_without_a_trade(
    tmp_path: Path,
) -> None:
    harness = Harness(tmp_path)
    core = harness.core
    second = harness.run_until_ready()
    core.set_trading(True)
    harness.trade(second)
    closed_before = core.metrics.seconds
    core.tick()  # the market clock has not moved past the candle's end plus its grace
    assert core.metrics.seconds == closed_before
    harness.clock.advance(1_000 + int(core.config.candle_close_grace_seconds * 1000))
    core.tick()
    assert core.metrics.seconds == closed_before + 1
    assert [c.entry for c in harness.commands] == [True]


def test_the_simulated_clock_refuses_to_go_back() -> None:
    clock = SimulatedClock()
    assert clock.now() is None and clock.now_or(7) == 7
    with pytest.raises(ValueError, match="no time yet"):
        clock.advance(1)
    clock.set(1_000)
    clock.observe(500)  # an older trade does not move it back
    assert clock.advance(250) == 1_250
    with pytest.raises(ValueError, match="cannot go back"):
        clock.set(1_000)
    with pytest.raises(ValueError, match="< 0"):
        clock.advance(-1)
