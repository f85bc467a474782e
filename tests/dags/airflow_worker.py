"""A long-lived process that runs DAGs with `dag.test()` for the tests, one request at a time.

Why a separate process: Airflow reads its configuration (AIRFLOW_HOME, the metadata
database) once, at import, and keeps it process-wide; running DAGs inside pytest's own
process would pin that configuration for every later test. Why one process for the whole
session: importing Airflow and starting `dag.test()`'s in-process execution API costs
seconds, paid once instead of once per run.

Protocol: one JSON request per line on stdin, {"dag_id", "logical_date", "env", "cwd"};
one JSON answer per line on the original stdout, {"state", "tasks", "xcom", "seconds"} or
{"error"}; the request {"describe": true} answers with every DAG's structure as parsed.
The first answer, sent unasked, says the DagBag's import errors and which heavy modules
parsing the DAG files imported (it must be none).
Everything Airflow and the tasks print goes to the log file named on the command line,
so it can never corrupt the answers. `env` is applied to os.environ before the run (tasks
run in this process and read TRADEPIPE_* through Settings at call time). Retries are set to
zero, so a failing task fails the run at once instead of waiting for its retry delay.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from datetime import datetime
from typing import Any

from app.services.dagtest import run_and_collect


def main() -> None:
    log_path = sys.argv[1]
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    log = open(log_path, "a", buffering=1)  # noqa: SIM115 - lives as long as the process
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout = sys.stderr = log

    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    hello = {"import_errors": bag.import_errors, "heavy_modules": _heavy_modules()}
    answers.write(json.dumps(hello) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        try:
            answer = _describe(bag) if request.get("describe") else _run(bag, request)
        except Exception:
            answer = {"error": traceback.format_exc()}
        answers.write(json.dumps(answer, default=str) + "\n")


def _run(bag: Any, request: dict[str, Any]) -> dict[str, Any]:
    # Each request brings the whole TRADEPIPE_* environment of its test: none may leak.
    for name in [name for name in os.environ if name.startswith("TRADEPIPE_")]:
        del os.environ[name]
    os.environ.update(request.get("env", {}))
    if request.get("cwd"):
        os.chdir(request["cwd"])
    dag = bag.dags[request["dag_id"]]
    print(f"===== {dag.dag_id} {request['logical_date']}", flush=True)
    started = time.perf_counter()
    logical_date = request["logical_date"]
    # None: a run without a logical date (and so without a data interval), as Airflow 3
    # allows for manual triggers.
    answer = run_and_collect(dag, datetime.fromisoformat(logical_date) if logical_date else None)
    seconds = round(time.perf_counter() - started, 2)
    print(f"===== {dag.dag_id} {answer['state']} in {seconds} s", flush=True)
    return {**answer, "seconds": seconds}


def _describe(bag: Any) -> dict[str, Any]:
    """Schedule, defaults and task graph of every DAG (task retries are not reported:
    runs set them to zero; the DAG's default_args are what the DAG file says)."""
    dags = {}
    for dag_id, dag in bag.dags.items():
        # An asset-or-time schedule wraps the time-based timetable; the assets it waits for
        # are named apart.
        timed = getattr(dag.timetable, "timetable", dag.timetable)
        condition = getattr(dag.timetable, "asset_condition", None)
        dags[dag_id] = {
            "timetable": type(timed).__name__,
            "schedule": getattr(timed, "expression", None),
            "timezone": str(getattr(timed, "timezone", "")),
            "trigger_assets": sorted(_asset_names(condition)),
            "catchup": dag.catchup,
            "max_active_runs": dag.max_active_runs,
            "retries": dag.default_args.get("retries"),
            "retry_delay_seconds": _seconds(dag.default_args.get("retry_delay")),
            "execution_timeout_seconds": _seconds(dag.default_args.get("execution_timeout")),
            "tasks": {
                task.task_id: {
                    "downstream": sorted(task.downstream_task_ids),
                    "trigger_rule": str(task.trigger_rule.value),
                    "multiple_outputs": bool(getattr(task, "multiple_outputs", False)),
                    "outlets": sorted(_asset_names(getattr(task, "outlets", []))),
                    "mapped": bool(getattr(task, "is_mapped", False))
                    or task.get_closest_mapped_task_group() is not None,
                }
                for task in dag.tasks
            },
        }
    return {"dags": dags}


def _asset_names(node: Any) -> set[str]:
    """The names of the assets (or asset references) in an asset condition or a list."""
    if node is None:
        return set()
    if isinstance(node, list | tuple):
        return set().union(*(_asset_names(item) for item in node))
    if hasattr(node, "objects"):  # AssetAll / AssetAny
        return set().union(*(_asset_names(item) for item in node.objects))
    name = getattr(node, "name", None)
    return {name} if isinstance(name, str) else set()


def _seconds(delta: Any) -> float | None:
    return None if delta is None else float(delta.total_seconds())


def _heavy_modules() -> list[str]:
    heavy = {"pandas", "numpy", "pyarrow", "mlflow", "lightgbm", "sklearn", "research"}
    return sorted(name for name in sys.modules if name.split(".")[0] in heavy)


if __name__ == "__main__":
    main()
