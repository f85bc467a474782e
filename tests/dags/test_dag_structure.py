"""The DAG files: they parse without errors, import nothing heavy at module level, and have
the schedules, defaults and task graphs the platform relies on."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.dags.conftest import DAGS_FOLDER, REPO_ROOT, AirflowWorker, airflow_environment

DAG_IDS = {"market_data", "model_lifecycle", "strategy_sync", "daily_report", "live_review"}

EDGES = {
    "market_data": {"plan_series": ["ingest"], "ingest": []},
    "model_lifecycle": {
        "discover_specs": ["spec.build_dataset"],
        "spec.build_dataset": ["spec.train"],
        "spec.train": ["spec.validate"],
        "spec.validate": ["spec.promote"],
        "spec.promote": ["flag_failed_specs", "notify_engine"],
        "notify_engine": [],
        "flag_failed_specs": [],
    },
    "strategy_sync": {
        "sync_registry": ["plan_backtests"],
        "plan_backtests": ["backtest_strategy"],
        "backtest_strategy": [],
    },
    "daily_report": {"roll_up_daily_stats": ["record_daily_report"], "record_daily_report": []},
    "live_review": {"plan_reviews": ["review_bot"], "review_bot": []},
}
SCHEDULES = {
    "market_data": "0 * * * *",
    "model_lifecycle": "0 0 * * *",
    "strategy_sync": "0 0 * * *",
    "daily_report": "0 0 * * *",
    "live_review": "0 0 * * *",
}
MAPPED = {"ingest", "spec.build_dataset", "spec.train", "spec.validate", "spec.promote"}
MAPPED |= {"backtest_strategy", "review_bot"}


@pytest.fixture(scope="module")
def dags(airflow: AirflowWorker) -> dict[str, Any]:
    return airflow.describe()


def test_the_dag_folder_parses_into_the_five_dags_without_errors(
    airflow: AirflowWorker, dags: dict[str, Any]
) -> None:
    assert airflow.import_errors == {}
    assert set(dags) == DAG_IDS
    # What Airflow's own parser loaded for the whole folder: no heavy module either.
    assert airflow.heavy_modules_after_parsing == []


def test_importing_a_dag_file_imports_no_heavy_module(airflow_home: Path) -> None:
    probe = Path(__file__).with_name("import_probe.py")
    done = subprocess.run(
        [sys.executable, str(probe), str(DAGS_FOLDER)],
        env=airflow_environment(airflow_home),
        cwd=airflow_home,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["baseline"] == []
    assert set(result["files"]) == {f"{dag_id}.py" for dag_id in DAG_IDS}
    assert result["files"] == {name: [] for name in result["files"]}


@pytest.mark.parametrize("dag_id", sorted(DAG_IDS))
def test_tasks_and_edges(dags: dict[str, Any], dag_id: str) -> None:
    tasks = dags[dag_id]["tasks"]
    assert {task_id: task["downstream"] for task_id, task in tasks.items()} == EDGES[dag_id]
    assert {task_id for task_id, task in tasks.items() if task["mapped"]} == MAPPED & set(tasks)
    # One XCom per task, the reference: never one XCom per key of a returned dict.
    assert not any(task["multiple_outputs"] for task in tasks.values())


def test_market_data_s_ingest_produces_the_asset_model_lifecycle_waits_for(
    dags: dict[str, Any],
) -> None:
    outlets = {
        (dag_id, task_id): task["outlets"]
        for dag_id, dag in dags.items()
        for task_id, task in dag["tasks"].items()
        if task["outlets"]
    }
    assert outlets == {("market_data", "ingest"): ["tradepipe_market_data"]}


def test_model_lifecycle_notifies_whatever_happened_and_still_fails_on_a_failed_spec(
    dags: dict[str, Any],
) -> None:
    tasks = dags["model_lifecycle"]["tasks"]
    assert tasks["notify_engine"]["trigger_rule"] == "all_done"
    assert tasks["flag_failed_specs"]["trigger_rule"] == "one_failed"


@pytest.mark.parametrize("dag_id", sorted(DAG_IDS))
def test_schedule_catchup_and_retries(dags: dict[str, Any], dag_id: str) -> None:
    dag = dags[dag_id]
    # Data intervals, not trigger instants: every task is keyed by [start, end).
    assert dag["timetable"] == "CronDataIntervalTimetable"
    assert (dag["schedule"], dag["timezone"]) == (SCHEDULES[dag_id], "UTC")
    # model_lifecycle also runs when market_data stored new candles (Airflow assets).
    assert dag["trigger_assets"] == (
        ["tradepipe_market_data"] if dag_id == "model_lifecycle" else []
    )
    assert dag["catchup"] is False
    assert dag["max_active_runs"] == 1
    assert dag["retries"] >= 1 and dag["retry_delay_seconds"] > 0
    assert dag["execution_timeout_seconds"] > 0


def test_the_demo_spec_is_found_by_default_and_its_data_is_the_default_series(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from research.orchestration.config import discover_specs, load_orchestration_config
    from research.orchestration.market_data import planned_series

    monkeypatch.chdir(REPO_ROOT)  # the DAGs run from the project root
    config = load_orchestration_config()
    specs = discover_specs(config)
    demo = REPO_ROOT / "research" / "specs" / "btcusdt_1m.toml"
    assert str(demo) in specs
    spec = tomllib.loads(demo.read_text())
    assert (REPO_ROOT / spec["strategy"]["file"]).is_file()
    (series,) = planned_series(config)
    key = f"{series['exchange']}/{series['symbol']}/{series['timeframe']}"
    assert spec["data"]["reference"] == key == "synthetic/BTCUSDT/1m"
    assert config.strategy_backtest.data == key
