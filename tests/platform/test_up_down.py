"""`tradepipe up` / `tradepipe down` end to end: the real stack on free ports, var/ in a
temporary folder, checked from outside through each service's own HTTP API.

One stack for the module (Airflow standalone alone takes a minute or two to start on the
2-core machine); the tests run in file order, and the last one stops it. The fixture's
teardown stops it too (and kills what a failed `down` left), so no test leaves a process.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from app.services.supervisor import group_members
from tests.platform.stack import (
    SERVICES,
    Tradepipe,
    get,
    kill_groups,
    post_json,
)
from tests.support import eventually

DAGS = ["daily_report", "live_review", "market_data", "model_lifecycle", "strategy_sync"]
MODEL = "btcusdt_1m_triple_barrier"
DEMO_BOTS = {"demo_ema_rsi", "demo_lgbm"}
ORDERS_DEADLINE_SECONDS = 600


@dataclass
class Stack:
    tradepipe: Tradepipe
    output: str
    pgids: list[int]

    @property
    def airflow_password(self) -> str:
        found = re.search(r"admin / (\S+)", self.output)
        assert found, self.output
        return found.group(1)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tradepipe = Tradepipe.on_free_ports(tmp_path_factory.mktemp("platform") / "var")
    started = tradepipe.run("up")
    pgids = [int(record["pgid"]) for record in tradepipe.pid_records().values()]
    try:
        assert started.returncode == 0, _logs(tradepipe, started.stdout + started.stderr)
        yield Stack(tradepipe, started.stdout, pgids)
    finally:
        tradepipe.run("down", timeout=180)
        kill_groups(pgids)


def _logs(tradepipe: Tradepipe, output: str) -> str:
    tails = [output[-4000:]]
    for log in sorted((tradepipe.home / "run").glob("*.log")):
        tails.append(f"----- {log.name}\n{log.read_text(errors='replace')[-3000:]}")
    return "\n".join(tails)


def test_up_prints_every_url_and_login(stack: Stack) -> None:
    t = stack.tradepipe
    for setting in ("MLFLOW_PORT", "AIRFLOW_PORT", "ENGINE_API_PORT", "DASHBOARD_PORT"):
        assert t.url(setting) in stack.output
    assert f"ws://127.0.0.1:{t.port('REPLAY_PORT')}" in stack.output
    assert stack.airflow_password
    for name in SERVICES:
        assert str(t.home / "run" / f"{name}.log") in stack.output
    # the local state came first: folders and the migrated trading database
    for folder in ("market_data", "airflow", "mlflow/artifacts"):
        assert (t.home / folder).is_dir()
    assert "trading database" in stack.output and (t.home / "tradepipe.db").is_file()


def test_airflow_lists_every_dag_without_import_errors(stack: Stack) -> None:
    t = stack.tradepipe
    status, answer = post_json(
        t.url("AIRFLOW_PORT", "/auth/token"),
        {"username": "admin", "password": stack.airflow_password},
    )
    assert status == 201, answer
    token = answer["access_token"]
    status, body = get(t.url("AIRFLOW_PORT", "/api/v2/dags?limit=100"), token)
    assert status == 200, body
    assert sorted(dag["dag_id"] for dag in json.loads(body)["dags"]) == DAGS
    status, body = get(t.url("AIRFLOW_PORT", "/api/v2/importErrors"), token)
    assert status == 200 and json.loads(body)["total_entries"] == 0, body
    # the bootstrap's run went through Airflow itself
    status, body = get(t.url("AIRFLOW_PORT", "/api/v2/dags/model_lifecycle/dagRuns"), token)
    runs = json.loads(body)["dag_runs"]
    assert any(run["dag_run_id"].startswith("tradepipe_up__") for run in runs), runs
    assert get(t.url("AIRFLOW_PORT", "/api/v2/dags"))[0] == 401  # no token, no answer


def test_mlflow_serves_a_champion(stack: Stack) -> None:
    t = stack.tradepipe
    status, body = get(
        t.url("MLFLOW_PORT", f"/api/2.0/mlflow/registered-models/alias?name={MODEL}&alias=champion")
    )
    assert status == 200, body
    version = json.loads(body)["model_version"]
    assert version["name"] == MODEL and "champion" in version["aliases"]


def test_the_engine_runs_the_demo_bots_and_orders_arrive(stack: Stack) -> None:
    url = stack.tradepipe.url("ENGINE_API_PORT", "/health")
    seen: list[dict[str, Any]] = [{}]

    def entered() -> dict[str, Any] | None:
        status, body = get(url)
        seen.append(json.loads(body))
        entries = sum(int(bot["entries"]) for bot in seen[-1]["bots"])
        return seen[-1] if status == 200 and entries > 0 else None

    health = eventually(
        entered,
        lambda: f"the demo bots' first entries (last health: {seen[-1]})",
        ORDERS_DEADLINE_SECONDS,
        interval=2,
    )
    assert health["state"] == "running", health
    bots = {bot["name"]: bot for bot in health["bots"]}
    assert set(bots) == DEMO_BOTS, health
    assert all(bot["state"] == "running" for bot in bots.values()), health
    assert bots["demo_lgbm"]["model"] == f"{MODEL}@champion"
    assert sum(int(bot["entries"]) for bot in bots.values()) > 0, health


def test_the_dashboard_answers(stack: Stack) -> None:
    t = stack.tradepipe
    assert get(t.url("DASHBOARD_PORT", "/_stcore/health")) == (200, b"ok")
    status, page = get(t.url("DASHBOARD_PORT", "/"))
    assert status == 200 and b"<title>" in page


def test_up_again_keeps_every_service_and_changes_nothing(stack: Stack) -> None:
    t = stack.tradepipe
    before = t.pid_records()
    again = t.run("up")
    assert again.returncode == 0, again.stdout + again.stderr
    for name in SERVICES:
        assert f"{name}: already running (pid {before[name]['pid']}), kept" in again.stdout
    assert t.pid_records() == before
    assert "champions exist" in again.stdout and "demo_lgbm: exists" in again.stdout


def test_down_stops_every_process_it_started_and_nothing_else(stack: Stack) -> None:
    t = stack.tradepipe
    records = t.pid_records()
    assert set(records) == set(SERVICES)
    members = {pid for record in records.values() for pid in group_members(record["pgid"])}
    assert len(members) > len(SERVICES)  # Airflow, MLflow and Streamlit run child processes
    bystander = subprocess.Popen(["sleep", "600"], start_new_session=True)  # not ours to stop
    try:
        stopped = t.run("down", timeout=180)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()
    for record in records.values():
        assert group_members(record["pgid"]) == [], record
    for pid in members:
        assert not Path(f"/proc/{pid}").exists() or _zombie(pid), pid
    assert t.pid_records() == {}
    again = t.run("down")
    assert again.returncode == 0 and again.stdout.count("not running") == len(SERVICES)


def _zombie(pid: int) -> bool:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return text[text.rindex(")") + 2 :].split()[0] == "Z"


def test_a_port_in_use_fails_up_naming_the_service_before_anything_starts(
    tmp_path: Path,
) -> None:
    tradepipe = Tradepipe.on_free_ports(tmp_path / "var")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        tradepipe.env["TRADEPIPE_ENGINE_API_PORT"] = str(taken)
        failed = tradepipe.run("up", timeout=300)
    assert failed.returncode == 1
    assert f"engine cannot start: port {taken}" in failed.stderr
    assert "TRADEPIPE_ENGINE_API_PORT" in failed.stderr
    assert tradepipe.pid_records() == {}  # nothing was started
