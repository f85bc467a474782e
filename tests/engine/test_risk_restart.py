"""The risk ledger is saved with the bot's book: a restarted engine keeps the day's loss,
so a bot stopped by its daily loss limit stays stopped until 00:00 UTC."""

from __future__ import annotations

from pathlib import Path

from tests.engine.helpers import Aio, add_bots, config_for, push, start_engine, walk


def test_a_daily_loss_stop_survives_a_restart(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    add_bots(database_url, strategies_dir, [("alpha", "always")], stop_loss_pct=0.05,
             take_profit_pct=5.0, daily_loss_limit=0.5)  # fmt: skip
    config = config_for(database_url, strategies_dir)
    trades = walk(400, moves=(0.999,))  # falling: every entry meets its stop

    async def scenario() -> None:
        running = await start_engine(config)
        engine = running.engine
        try:
            while not engine.bus.recent("risk_limit_hit"):
                await push(running, [next(trades)])
            before = engine.bot_status("alpha")
            assert before is not None and before.risk_halt == "daily_loss_limit"
        finally:
            await engine.stop()
        running = await start_engine(config)
        engine = running.engine
        try:
            await push(running, [next(trades) for _ in range(60)])
            after = engine.bot_status("alpha")
            assert after is not None and after.risk_halt == "daily_loss_limit"
            assert after.day_realised_pnl == before.day_realised_pnl
            assert after.risk_halted_until_ms == before.risk_halted_until_ms
            assert after.decisions > 0 and engine.core.metrics.entries == 0
            assert not engine.bus.recent("risk_limit_hit")  # told once, before the restart
        finally:
            await engine.stop()

    aio.run(scenario(), timeout=60)
