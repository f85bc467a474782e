"""The systemd unit of the engine says what operations rely on (parsed, not installed)."""

from __future__ import annotations

import configparser
from pathlib import Path

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "systemd" / "tradepipe-engine.service"


def test_the_engine_unit_restarts_on_failure_and_stops_with_sigterm() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(UNIT)
    service = unit["Service"]
    assert service["ExecStart"].endswith("/.venv/bin/tradepipe live run")
    assert service["Restart"] == "on-failure"
    assert service["KillSignal"] == "SIGTERM"
    assert int(service["TimeoutStopSec"]) > 15  # longer than the engine's flush deadline
    assert service["WorkingDirectory"] and service["EnvironmentFile"]
    assert unit["Install"]["WantedBy"] == "multi-user.target"
