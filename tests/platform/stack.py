"""Helpers of the platform tests: a `tradepipe` command line on free ports, plain HTTP.

Every call here is plain urllib against the real services, independent of the code under
test (app.services), so a bug there cannot hide itself.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.services.supervisor import group_members

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("mlflow", "airflow", "replay", "engine", "dashboard")
PORT_SETTINGS = (
    "MLFLOW_PORT",
    "AIRFLOW_PORT",
    "ENGINE_API_PORT",
    "DASHBOARD_PORT",
    "REPLAY_PORT",
    "REPLAY_REST_PORT",
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Tradepipe:
    """`python -m app ...` from the project folder with its own var/ and ports."""

    home: Path
    env: dict[str, str]

    @classmethod
    def on_free_ports(cls, home: Path) -> Tradepipe:
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("TRADEPIPE_", "AIRFLOW"))
        }
        env["TRADEPIPE_HOME"] = str(home)
        for name in PORT_SETTINGS:
            env[f"TRADEPIPE_{name}"] = str(free_port())
        # Airflow's log servers: their default ports may be taken by any other Airflow.
        env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(free_port())
        env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"] = str(free_port())
        return cls(home, env)

    def port(self, name: str) -> int:
        return int(self.env[f"TRADEPIPE_{name}"])

    def url(self, setting: str, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port(setting)}{path}"

    def run(self, *args: str, timeout: float = 1500) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "app", *args],
            env=self.env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def pid_records(self) -> dict[str, dict[str, Any]]:
        records = {}
        for name in SERVICES:
            path = self.home / "run" / f"{name}.pid"
            if path.is_file():
                records[name] = json.loads(path.read_text())
        return records


def kill_groups(pgids: list[int]) -> None:
    """Last resort of a fixture's teardown: whatever a failed test left running."""
    for pgid in pgids:
        if group_members(pgid):
            os.killpg(pgid, signal.SIGKILL)


def get(url: str, token: str | None = None, timeout: float = 10) -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read()


def post_json(url: str, body: dict[str, Any], timeout: float = 10) -> tuple[int, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return int(error.code), error.read().decode(errors="replace")
