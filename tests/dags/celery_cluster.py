"""A real Airflow 3 cluster on the CeleryExecutor for the tests, on this machine.

The components the `celery` compose profile runs, as processes: an api-server (the task
processes report to its execution API), a scheduler (with the CeleryExecutor, it only
queues), a dag-processor and N `airflow celery worker` processes with concurrency 1 and
names of their own. Metadata on a PostgreSQL database made for the cluster (dropped
after), broker and result backend on the local Redis, in one database number and under a
queue name of the cluster's own, so nothing another run left in Redis is ever picked up.

Each process is a service of tradepipe's supervisor (own process group, log file, pid file
under `<root>/run`), stopped as a group at the end. Nothing of Airflow is imported here:
the metadata database is read with SQLAlchemy, runs are triggered with Airflow's CLI.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import redis
import sqlalchemy as sa
from sqlalchemy.engine import URL

from app.services.stack import airflow_healthy
from app.services.supervisor import (
    ServiceSpec,
    log_path,
    running,
    start,
    stop,
    wait_healthy,
)
from tests.dags.conftest import airflow_environment, closed_port

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
# Broker and result backend: a Redis database number of the tests' own (0 is the default).
REDIS_URL = "redis://127.0.0.1:6379/11"
FINISHED = {"success", "failed", "upstream_failed", "skipped", "removed"}


@dataclass(frozen=True)
class TaskRun:
    """One task instance as the metadata database holds it."""

    task_id: str
    map_index: int
    state: str | None
    hostname: str
    start: datetime | None
    end: datetime | None

    @property
    def key(self) -> str:
        return self.task_id if self.map_index < 0 else f"{self.task_id}[{self.map_index}]"

    def __str__(self) -> str:
        span = "-".join(
            f"{when:%H:%M:%S.%f}"[:-3] if when else "?" for when in (self.start, self.end)
        )
        return f"{self.key} {self.state} on {self.hostname or '-'} {span}"


class CeleryCluster:
    def __init__(
        self, root: Path, database: URL, tradepipe_env: dict[str, str], redis_url: str = REDIS_URL
    ) -> None:
        self.root = root
        self.run_dir = root / "run"
        self.database = database
        self.queue = f"tradepipe_test_{uuid.uuid4().hex[:10]}"
        self.api_port = closed_port()
        home = root / "airflow_home"
        home.mkdir(parents=True, exist_ok=True)
        sync_url = database.render_as_string(hide_password=False)
        self.env = airflow_environment(home) | tradepipe_env
        self.env.update(
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=sync_url,
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC=sync_url.replace(
                "postgresql+psycopg://", "postgresql+psycopg_async://"
            ),
            AIRFLOW__CORE__EXECUTOR="CeleryExecutor",
            AIRFLOW__CELERY__BROKER_URL=redis_url,
            AIRFLOW__CELERY__RESULT_BACKEND=redis_url,
            AIRFLOW__OPERATORS__DEFAULT_QUEUE=self.queue,
            AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{self.api_port}/execution/",
            AIRFLOW__API__HOST="127.0.0.1",
            AIRFLOW__API__PORT=str(self.api_port),
            AIRFLOW__API__WORKERS="1",
            AIRFLOW__API__BASE_URL=f"http://127.0.0.1:{self.api_port}",
            # The scheduler signs each task's token, the api-server checks it: one secret.
            AIRFLOW__API_AUTH__JWT_SECRET=uuid.uuid4().hex,
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
            AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
            # Only triggered runs: unpaused, model_lifecycle would also get its latest
            # scheduled interval, whose tasks would take the workers.
            AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="False",
            AIRFLOW__LOGGING__LOGGING_LEVEL="INFO",
            AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(closed_port()),
            AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=str(closed_port()),
            PYTHONUNBUFFERED="1",
        )
        self.services: list[str] = []

    def migrate(self) -> None:
        done = subprocess.run(
            [AIRFLOW, "db", "migrate"],
            env=self.env,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, (
            f"airflow db migrate failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )

    def _spec(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> ServiceSpec:
        return ServiceSpec(
            name=name,
            argv=[AIRFLOW, *argv],
            health_url=f"http://127.0.0.1:{self.api_port}/api/v2/monitor/health",
            url=f"http://127.0.0.1:{self.api_port}",
            env=env or self.env,
            cwd=self.root,
            health_check=airflow_healthy,
        )

    def start(self, workers: list[str], timeout_seconds: float = 240) -> None:
        """Start every component and wait until the api-server reports the scheduler and
        the dag-processor healthy and every worker logged that it is ready."""
        specs = [
            self._spec("api-server", ["api-server"]),
            self._spec("scheduler", ["scheduler"]),
            self._spec("dag-processor", ["dag-processor"]),
        ]
        for name in workers:
            worker_env = self.env | {
                "CELERY_TEST_WORKER_NAME": name,
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.dags.worker_hostname.worker_name",
            }
            argv = ["celery", "worker", "--celery-hostname", f"{name}@%h"]
            argv += ["--concurrency", "1", "--queues", self.queue, "--skip-serve-logs"]
            specs.append(self._spec(name, argv, worker_env))
        for spec in specs:
            start(spec, self.run_dir)
            self.services.append(spec.name)
        wait_healthy(specs[:1], self.run_dir, timeout_seconds)
        deadline = time.monotonic() + timeout_seconds
        for name in workers:
            log = log_path(self.run_dir, name)
            while f"{name}@" not in _ready_lines(log):
                assert running(self.run_dir, name) is not None, (
                    f"worker {name} exited before it was ready:\n{self.log_tail(name)}"
                )
                assert time.monotonic() < deadline, (
                    f"worker {name} did not log 'ready' within {timeout_seconds:.0f} s:\n"
                    f"{self.log_tail(name)}"
                )
                time.sleep(0.5)

    def wait_for_dag(self, dag_id: str, timeout_seconds: float = 90) -> None:
        """Until the dag-processor has serialized `dag_id`, unpaused."""
        query = sa.text(
            "SELECT d.is_paused FROM dag d JOIN serialized_dag s ON s.dag_id = d.dag_id"
            " WHERE d.dag_id = :dag_id"
        )
        deadline = time.monotonic() + timeout_seconds
        while True:
            with self._connect() as connection:
                paused = connection.execute(query, {"dag_id": dag_id}).scalar()
            if paused is False:
                return
            assert time.monotonic() < deadline, (
                f"{dag_id} not parsed (or paused: {paused}) within {timeout_seconds:.0f} s:\n"
                f"{self.log_tail('dag-processor')}"
            )
            time.sleep(1)

    def trigger(self, dag_id: str, logical_date: str, run_id: str) -> None:
        argv = [AIRFLOW, "dags", "trigger", dag_id, "--logical-date", logical_date]
        done = subprocess.run(
            [*argv, "--run-id", run_id],
            env=self.env,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"airflow dags trigger failed:\n{done.stdout}{done.stderr}"

    def wait_for_run(self, dag_id: str, run_id: str, timeout_seconds: float) -> str:
        """The run's final state. Fails at once on a task that failed or waits for a retry
        (model_lifecycle retries after 5 minutes), naming it and showing the worker logs."""
        query = sa.text("SELECT state FROM dag_run WHERE dag_id = :dag_id AND run_id = :run_id")
        deadline = time.monotonic() + timeout_seconds
        while True:
            with self._connect() as connection:
                state = connection.execute(query, {"dag_id": dag_id, "run_id": run_id}).scalar()
            tasks = self.task_runs(dag_id, run_id)
            broken = [t.key for t in tasks if t.state in {"failed", "up_for_retry"}]
            assert not broken, f"tasks {broken} failed: {self.task_errors(dag_id, run_id)}"
            if state in {"success", "failed"}:
                return str(state)
            assert time.monotonic() < deadline, (
                f"run {run_id} still {state} after {timeout_seconds:.0f} s; tasks: "
                f"{ {t.key: t.state for t in tasks} }\n{self.worker_logs()}"
            )
            time.sleep(1)

    def task_runs(self, dag_id: str, run_id: str) -> list[TaskRun]:
        query = sa.text(
            "SELECT task_id, map_index, state, hostname, start_date, end_date FROM task_instance"
            " WHERE dag_id = :dag_id AND run_id = :run_id ORDER BY task_id, map_index"
        )
        with self._connect() as connection:
            rows = connection.execute(query, {"dag_id": dag_id, "run_id": run_id}).all()
        return [TaskRun(*row) for row in rows]

    def task_errors(self, dag_id: str, run_id: str) -> str:
        """The exceptions the task logs of the run recorded, one line each."""
        folder = self.env["AIRFLOW_HOME"] + f"/logs/dag_id={dag_id}/run_id={run_id}"
        found = []
        for path in sorted(Path(folder).rglob("attempt=*.log")):
            for line in path.read_text(errors="replace").splitlines():
                with contextlib.suppress(ValueError):
                    for error in json.loads(line).get("error_detail", []):
                        name = path.relative_to(folder).parent
                        found.append(f"{name}: {error['exc_type']}: {error['exc_value']}")
        return "\n".join(found) or f"no error in the task logs\n{self.worker_logs()}"

    def log_tail(self, name: str, characters: int = 4000) -> str:
        path = log_path(self.run_dir, name)
        text = path.read_text(errors="replace") if path.is_file() else "(no log)"
        return f"--- {path}\n{text[-characters:]}"

    def worker_logs(self) -> str:
        names = [name for name in self.services if name.startswith("worker")]
        return "\n".join(self.log_tail(name) for name in [*names, "scheduler"])

    def stop(self) -> None:
        # Killed without a grace period: the test's work is done and its state is dropped.
        for name in reversed(self.services):
            stop(self.run_dir, name, timeout_seconds=0)
        self.services.clear()
        # The queue's keys in Redis go too (task results expire on their own, after a day).
        broker = redis.Redis.from_url(self.env["AIRFLOW__CELERY__BROKER_URL"])
        keys = [
            self.queue,
            f"_kombu.binding.{self.queue}",
            f"_kombu.binding_permanent.{self.queue}",
        ]
        broker.delete(*keys)
        broker.close()

    @contextmanager
    def _connect(self) -> Iterator[sa.Connection]:
        engine = sa.create_engine(self.database, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as connection:
                yield connection
        finally:
            engine.dispose()


def _ready_lines(log: Path) -> str:
    text = log.read_text(errors="replace") if log.is_file() else ""
    return "\n".join(line for line in text.splitlines() if " ready" in line)
