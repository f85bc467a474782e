"""Run one DAG headless with Airflow's `dag.test()`, in a process of its own.

`tradepipe demo` runs `model_lifecycle` this way: the real DAG file, parsed by Airflow's
DagBag and executed task by task by Airflow (mapping, trigger rules, XCom), without a
scheduler or API server. Why a separate process: Airflow reads its configuration
(AIRFLOW_HOME, the metadata database) once, at import, and keeps it process-wide; the
caller's process never imports Airflow. The same approach as the DAG tests' worker
(tests/dags/airflow_worker.py), in one-shot form.

`run_dag_test` (the caller's side) migrates the metadata database with `airflow db
migrate`, then runs `python -m app.services.dagtest DAG_ID RESULT_JSON`, whose
output goes to a log file; the child writes {"state", "tasks", "xcom", "import_errors"}
to RESULT_JSON. Task retries are set to zero: a failing task fails the run at once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

__all__ = ["DagTestError", "DagTestResult", "run_and_collect", "run_dag_test"]


class DagTestError(RuntimeError):
    """The run could not be made (migration, import errors, a crash); names the log."""


@dataclass(frozen=True, slots=True)
class DagTestResult:
    state: str
    tasks: dict[str, str]
    xcom: dict[str, Any]

    @property
    def failed_tasks(self) -> list[str]:
        return sorted(key for key, state in self.tasks.items() if state == "failed")


def run_dag_test(
    dag_id: str, env: Mapping[str, str], cwd: Path, log: Path, timeout_seconds: float = 1800
) -> DagTestResult:
    """Migrate the metadata database of env's AIRFLOW_HOME and run `dag_id` once."""
    log.parent.mkdir(parents=True, exist_ok=True)
    result_path = log.with_suffix(".result.json")
    result_path.unlink(missing_ok=True)
    airflow = str(Path(sys.executable).with_name("airflow"))
    steps = [
        ("airflow db migrate", [airflow, "db", "migrate"]),
        (
            f"dag.test({dag_id})",
            [sys.executable, "-m", "app.services.dagtest", dag_id, str(result_path)],
        ),
    ]
    with log.open("ab") as output:
        for what, argv in steps:
            try:
                done = subprocess.run(
                    argv,
                    env=dict(env),
                    cwd=cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    timeout=timeout_seconds,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise DagTestError(
                    f"{what} did not finish in {timeout_seconds:.0f} s: see {log}"
                ) from None
            if done.returncode != 0 and not result_path.is_file():
                raise DagTestError(f"{what} failed (exit {done.returncode}): see {log}")
    data = json.loads(result_path.read_text())
    if data.get("import_errors"):
        raise DagTestError(f"DAG import errors {sorted(data['import_errors'])}: see {log}")
    return DagTestResult(str(data["state"]), dict(data["tasks"]), dict(data["xcom"]))


def run_and_collect(dag: Any, logical_date: datetime | None = None) -> dict[str, Any]:
    """Run `dag` once with `dag.test()` (task retries off: a failing task fails the run at
    once); its state, each task instance's state and each task's return value (XCom). In a
    process that imported Airflow with the right AIRFLOW_HOME (this module's child, and the
    DAG tests' worker)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    for task in dag.tasks:
        task.retries = 0
    run = dag.test(logical_date=logical_date)
    tasks = {_key(ti.task_id, ti.map_index): str(ti.state) for ti in run.get_task_instances()}
    with create_session() as session:
        rows = session.query(XComModel).filter(
            XComModel.dag_id == dag.dag_id,
            XComModel.run_id == run.run_id,
            XComModel.key == "return_value",
        )
        xcom = {_key(row.task_id, row.map_index): XComModel.deserialize_value(row) for row in rows}
    return {"state": str(run.state), "tasks": tasks, "xcom": xcom}


def _main(dag_id: str, result_path: str) -> int:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if bag.import_errors or dag_id not in bag.dags:
        errors = bag.import_errors or {dag_id: "no such DAG"}
        Path(result_path).write_text(json.dumps({"import_errors": errors}))
        return 1
    answer = {**run_and_collect(bag.dags[dag_id]), "import_errors": {}}
    Path(result_path).write_text(json.dumps(answer, default=str))
    return 0 if answer["state"] == "success" else 1


def _key(task_id: str, map_index: int) -> str:
    return task_id if map_index < 0 else f"{task_id}[{map_index}]"


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1], sys.argv[2]))
