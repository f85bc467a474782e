"""Fixtures of the DAG tests: Airflow with its own metadata database, and one test's state.

Getting `dag.test()` to run costs three things, each paid once per session:
1. An AIRFLOW_HOME under pytest's temporary folder, with AIRFLOW__DATABASE__SQL_ALCHEMY_CONN
   pointing at a SQLite file there, AIRFLOW__CORE__LOAD_EXAMPLES=False and
   AIRFLOW__CORE__DAGS_FOLDER at the repository's dags/.
2. `airflow db migrate` in a subprocess, the supported way to create the metadata schema
   (about 5 s on the 2-core machine: interpreter and Airflow import about 2.5 s, the
   migrations the rest).
3. A worker process (tests/dags/airflow_worker.py) that imports Airflow once and runs
   every `dag.test()` of the session, so Airflow's process-wide configuration never enters
   pytest's own process and other tests.

Each test gets its own trading database, MLflow store, market data and strategies folder
(`Platform`), passed to the worker as TRADEPIPE_* variables with every run.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DAGS_FOLDER = REPO_ROOT / "dags"
WORKER = Path(__file__).with_name("airflow_worker.py")
RUN_TIMEOUT_SECONDS = 240


def airflow_environment(home: Path) -> dict[str, str]:
    """The process environment of an Airflow process for the tests: ours only, nothing of
    the developer's AIRFLOW_* or TRADEPIPE_* settings."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AIRFLOW", "TRADEPIPE_"))
    }
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS_FOLDER),
        AIRFLOW__LOGGING__LOGGING_LEVEL="WARNING",
        PYTHONPATH=os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    )
    return env


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An AIRFLOW_HOME whose metadata database `airflow db migrate` has created."""
    home = tmp_path_factory.mktemp("airflow_home")
    started = time.perf_counter()
    done = subprocess.run(
        [str(Path(sys.executable).with_name("airflow")), "db", "migrate"],
        env=airflow_environment(home),
        cwd=home,
        capture_output=True,
        text=True,
        timeout=180,
    )
    seconds = time.perf_counter() - started
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (home / "migrate_seconds.txt").write_text(f"{seconds:.2f}\n")
    return home


@dataclass
class DagRun:
    """What one `dag.test()` left: run state, task states and return values (XCom) by
    task id, with `[map_index]` for mapped instances."""

    state: str
    tasks: dict[str, str]
    xcom: dict[str, Any]
    seconds: float

    def mapped(self, task_id: str) -> list[Any]:
        """The return values of a mapped task, by map index."""
        keys = sorted(
            (key for key in self.xcom if key.startswith(f"{task_id}[")),
            key=lambda key: int(key[len(task_id) + 1 : -1]),
        )
        return [self.xcom[key] for key in keys]


class AirflowWorker:
    def __init__(self, home: Path) -> None:
        self.log_path = home / "worker.log"
        self.process = subprocess.Popen(
            [sys.executable, str(WORKER), str(self.log_path)],
            env=airflow_environment(home),
            cwd=home,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        hello = self._answer()
        self.import_errors: dict[str, str] = hello["import_errors"]
        self.heavy_modules_after_parsing: list[str] = hello["heavy_modules"]

    def run(self, dag_id: str, logical_date: str | None, platform: Platform) -> DagRun:
        """Run `dag_id` for `logical_date` (ISO, with zone; None for a run without one, so
        without a data interval) on the test's platform."""
        assert self.process.stdin is not None
        request = {
            "dag_id": dag_id,
            "logical_date": logical_date,
            "env": platform.env,
            "cwd": str(platform.root),
        }
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        answer = self._answer()
        if "error" in answer:
            pytest.fail(f"dag.test({dag_id}) raised:\n{answer['error']}\n{self.log_tail()}")
        return DagRun(answer["state"], answer["tasks"], answer["xcom"], answer["seconds"])

    def describe(self) -> dict[str, Any]:
        """Every DAG's schedule, defaults and tasks as the DagBag parsed them."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"describe": True}) + "\n")
        self.process.stdin.flush()
        answer = self._answer()
        if "error" in answer:
            pytest.fail(f"describing the DAGs failed:\n{answer['error']}")
        dags: dict[str, Any] = answer["dags"]
        return dags

    def log_tail(self, characters: int = 6000) -> str:
        return self.log_path.read_text(errors="replace")[-characters:]

    def _answer(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            pytest.fail(f"the Airflow worker died:\n{self.log_tail()}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        # Killed rather than asked to exit: its work is done, and Airflow's exit handlers
        # would cost seconds for nothing.
        self.process.kill()
        self.process.wait()


@pytest.fixture(scope="session")
def airflow(airflow_home: Path) -> Iterator[AirflowWorker]:
    worker = AirflowWorker(airflow_home)
    try:
        yield worker
    finally:
        worker.close()


def closed_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@dataclass
class Platform:
    """One test's tradepipe state: everything under `root`, named by TRADEPIPE_* vars.
    The engine API port is one nothing listens on: the engine is "not running"."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.strategies_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text("")
        self.env.update(
            TRADEPIPE_HOME=str(self.root / "var"),
            TRADEPIPE_STRATEGIES_DIR=str(self.strategies_dir),
            TRADEPIPE_ORCHESTRATION_CONFIG=str(self.config_path),
            TRADEPIPE_ENGINE_API_PORT=str(closed_port()),
        )

    @property
    def strategies_dir(self) -> Path:
        return self.root / "strategies"

    @property
    def config_path(self) -> Path:
        return self.root / "orchestration.toml"

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.root / 'var' / 'tradepipe.db'}"

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.root / 'var' / 'mlflow' / 'mlflow.db'}"

    @property
    def market_data_dir(self) -> Path:
        return self.root / "var" / "market_data"

    def write_config(self, text: str) -> None:
        """The orchestration config (TOML) the DAGs of this test read."""
        self.config_path.write_text(text)


@pytest.fixture
def platform(tmp_path: Path) -> Platform:
    return Platform(tmp_path)
