"""`tradepipe live run` as an operator runs it: replay feed, a bot, the control API, SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from typer.testing import CliRunner, Result

from app.cli import app
from tests.support import eventually

# Enters at every candle: the test is about the wiring (CLI, replay, engine, API, database),
# so it must not wait for a market condition.
ALWAYS_ENTER = """
from tradepipe.strategy import Enter, Strategy, StrategyParameters


class AlwaysEnter(Strategy[StrategyParameters]):
    def on_candle(self, context):
        return Enter(reason="test") if context.can_enter else None
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _health(port: int) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]
    except urllib.error.HTTPError as error:  # 503 while starting: still a health report
        return json.loads(error.read())  # type: ignore[no-any-return]
    except OSError:
        return None


def test_engine_trades_from_the_replay_and_stops_cleanly(tmp_path: Path) -> None:
    strategies = tmp_path / "strategies"
    strategies.mkdir()
    (strategies / "always_enter.py").write_text(ALWAYS_ENTER)
    env = os.environ | {
        "TRADEPIPE_HOME": str(tmp_path / "var"),
        "TRADEPIPE_STRATEGIES_DIR": str(strategies),
        "TRADEPIPE_REPLAY_PORT": str(_free_port()),
        "TRADEPIPE_REPLAY_REST_PORT": str(_free_port()),
        "TRADEPIPE_ENGINE_API_PORT": str(api_port := _free_port()),
    }
    runner = CliRunner(env=env)
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    tradepipe = [sys.executable, "-m", "app"]
    replay_args = ["feed", "replay", "--source", "synthetic", "--speed", "20"]
    replay = subprocess.Popen(
        [*tradepipe, *replay_args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    engine = None
    try:
        # `bots add` asks the venue (here the replay's REST side) whether BTCUSDT exists:
        # retried until the replay is up
        def add_once_the_venue_answers() -> Result | None:
            added = runner.invoke(
                app, ["bots", "add", "scalper", "--strategy", "always_enter", "--symbol",
                      "BTCUSDT", "--timeframe", "1s", "--capital", "100", "--take-profit-pct",
                      "0.01", "--stop-loss-pct", "0.01", "--max-holding-seconds", "30",
                      "--maker-timeout-seconds", "5"],
            )  # fmt: skip
            return added if added.exit_code == 0 or "cannot ask" not in added.stderr else None

        added = eventually(add_once_the_venue_answers, "the replay's REST side", 60, 0.3)
        assert added.exit_code == 0, added.stderr
        engine = subprocess.Popen([*tradepipe, "live", "run"], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)  # fmt: skip

        def entered() -> dict[str, object] | None:
            health = _health(api_port)
            bots = health.get("bots") if health is not None else []
            assert isinstance(bots, list)
            return health if sum(int(bot.get("entries", 0) or 0) for bot in bots) else None

        health = eventually(entered, "the bot's first entry", 120, interval=1)
        assert health["state"] == "running", health
        engine.send_signal(signal.SIGTERM)
        output, _ = engine.communicate(timeout=30)
        assert engine.returncode == 0, output
    finally:
        for process in (engine, replay):
            if process is None:
                continue
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)
    shown = runner.invoke(app, ["bots", "show", "scalper"]).stdout
    assert "scalper-1-en" in shown, shown
