"""The risk layer's circuit breaker in a real engine trading through the real ccxt client
against the exchange simulator: venue errors in a row stop a bot's entries for a
cool-down, with an event; it closes after the cool-down, and an accepted order keeps it
closed."""

from __future__ import annotations

from pathlib import Path

from live.replay.exchange import ExchangeSimulator, Fault, FaultKind
from tests.brokers.helpers import API_KEY, API_SECRET, account
from tests.brokers.test_engine_testnet import (
    POLL_SECONDS,
    Market,
    add_testnet_bot,
    credentials,
)
from tests.engine.helpers import Aio, config_for, start_engine

__all__ = ["credentials"]  # the credential set of the testnet bot (autouse fixture)


def sent(exchange: ExchangeSimulator, role: str) -> int:
    """Orders of `role` (en: entries, tx/sl/mx: exits) that reached the venue."""
    ids = [record.params.get("newClientOrderId", "") for record in exchange.placements()]
    return sum(1 for order_id in ids if f"-{role}" in order_id)


def exits_sent(exchange: ExchangeSimulator) -> int:
    return sum(sent(exchange, role) for role in ("tx", "sl", "mx", "tp"))


def test_venue_errors_in_a_row_stop_entries_for_a_cool_down(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    add_testnet_bot(database_url, strategies_dir, "tn")

    async def scenario() -> None:
        async with ExchangeSimulator(account(usdt=10_000.0), {API_KEY: API_SECRET}) as exchange:
            config = config_for(
                database_url,
                strategies_dir,
                exchange_testnet_url=exchange.url,
                exchange_timeout_seconds=0.5,
                exchange_poll_seconds=POLL_SECONDS,
                exchange_rate_limit_ms=0.0,
                venue_error_limit=3,
                venue_cooldown_seconds=20.0,
            )
            market = Market(exchange)
            running = await start_engine(config)
            engine = running.engine
            bus = engine.bus
            try:
                while not engine.core.metrics.entries:  # warm: the bot enters every candle
                    await market.play(running, 1, aio)
                # the venue refuses every order, entries and exits
                exchange.inject(Fault(FaultKind.REJECT, times=10_000))
                placed = len(exchange.placements())
                while not bus.recent("circuit_open"):
                    await market.play(running, 1, aio)
                    assert len(exchange.placements()) <= placed + 6, "never opened"
                [opened] = bus.recent("circuit_open")
                assert opened.bot == "tn" and opened.data["errors"] == 3
                assert "insufficient balance" in opened.data["last_error"]
                status = engine.bot_status("tn")
                assert status is not None and status.risk_halt == "venue_errors"
                assert status.risk_halted_until_ms == opened.data["until_ms"]
                assert not status.accepting_entries
                # within the cool-down (market time) no entry reaches the venue; the open
                # position's exit is still tried
                entries, exits = sent(exchange, "en"), exits_sent(exchange)
                await market.play(running, 10, aio)
                assert sent(exchange, "en") == entries
                assert exits_sent(exchange) > exits
                assert not bus.recent("circuit_closed")
                # the venue answers again: an accepted order closes the breaker
                exchange.clear_faults()
                await market.play(running, 15, aio)
                await aio.eventually(lambda: bool(bus.recent("circuit_closed")), "closed")
                await aio.eventually(lambda: sent(exchange, "en") > entries, "entries again")
                status = engine.bot_status("tn")
                assert status is not None and status.risk_halt is None
                assert engine.core.bots["tn"].breaker.errors == 0
            finally:
                await engine.stop()

    aio.run(scenario(), timeout=90)
