"""The embedded stack of `tradepipe up`: which processes, with which arguments and health checks.

Five services, each started from the project folder with the caller's TRADEPIPE_*
environment (so every process loads the same Settings and shares var/):

- mlflow: `mlflow server` on the SQLite store under var/mlflow; health GET /health.
- airflow: `airflow standalone`, AIRFLOW_HOME=var/airflow; health GET
  /api/v2/monitor/health with metadatabase, scheduler and DAG processor healthy.
- replay: `tradepipe feed replay --source synthetic`; health GET /api/v3/ping (REST side).
- engine: `tradepipe live run`; health GET /health (200 only while running).
- dashboard: `tradepipe dashboard` (Streamlit); health GET /_stcore/health.

The MLflow server serves the very store the research tasks write and the engine reads
(`mlflow_tracking_uri`, SQLite by default): one registry, whether a client goes through the
server (the UI, a notebook) or opens the store directly. Artifacts are proxied by the
server (`--serve-artifacts`) from `mlflow_artifact_root`.

Airflow's login: the simple auth manager with one user, `admin`, whose password is made
once and kept in `var/airflow/passwords.json` (mode 600); `up` prints it. The DAGs folder
is the project's `dags/`, examples are off, and every Airflow process runs from the
project folder (specs name their strategy files relative to it). Airflow's own log-server
ports (8793, 8794) follow AIRFLOW__LOGGING__* variables when the caller sets them.

The replay plays the synthetic market at `replay_speed` times real time (60 by default):
each second of the feed holds a minute of the synthetic market, so the demo bots, which
trade 1 s candles, see what a 1 m bot sees in an hour of the real-time market, and the first
screen fills within a minute.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path

from app.services.supervisor import ServiceSpec
from tradepipe.config import Settings

__all__ = [
    "AIRFLOW_USER",
    "DEFAULT_REPLAY_SPEED",
    "SERVICE_ORDER",
    "airflow_env",
    "airflow_healthy",
    "airflow_password",
    "embedded_services",
    "engine_api_token",
    "run_dir",
    "service_env",
]

AIRFLOW_USER = "admin"
DEFAULT_REPLAY_SPEED = 60.0
SERVICE_ORDER = ("mlflow", "airflow", "replay", "engine", "dashboard")


def run_dir(settings: Settings) -> Path:
    """Pid files and logs of the services: <home>/run."""
    return settings.state_dir / "run"


def _reachable_host(settings: Settings) -> str:
    """The address a client on this machine uses for a service bound to `host`."""
    host = "127.0.0.1" if settings.host in {"0.0.0.0", "::", ""} else settings.host
    return f"[{host}]" if ":" in host else host


def _secret_file(path: Path, make: str) -> str:
    """The secret kept in `path`, made once (`make`) and readable by the owner only."""
    if path.is_file():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(make + "\n")
    return make


def airflow_password(settings: Settings) -> str:
    """The admin password, in Airflow's simple-auth-manager passwords file (JSON)."""
    path = settings.resolved_airflow_home / "passwords.json"
    if path.is_file():
        return str(json.loads(path.read_text())[AIRFLOW_USER])
    password = secrets.token_urlsafe(12)
    _secret_file(path, json.dumps({AIRFLOW_USER: password}))
    return password


def engine_api_token(settings: Settings) -> str:
    """The engine's control-API token: the configured one, else one kept under var/."""
    if settings.engine_api_token is not None:
        return settings.engine_api_token.get_secret_value()
    return _secret_file(settings.state_dir / "engine_api_token", secrets.token_urlsafe(24))


def service_env(settings: Settings) -> dict[str, str]:
    """The environment every service runs with: the caller's, with the state folder made
    absolute and the engine token set, so each process finds the same var/."""
    env = dict(os.environ)
    env["TRADEPIPE_HOME"] = str(settings.state_dir)
    env["TRADEPIPE_ENGINE_API_TOKEN"] = engine_api_token(settings)
    env.setdefault("PYTHONUNBUFFERED", "1")
    # Airflow standalone starts its components as `airflow ...` from PATH: ours first.
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")]).rstrip(os.pathsep)
    return env


def airflow_env(settings: Settings, project: Path, base: dict[str, str]) -> dict[str, str]:
    """Airflow's environment for `settings`: its home and metadata database under var/,
    the project's dags/, the simple auth manager's user and passwords file, the API port."""
    home = settings.resolved_airflow_home
    host = _reachable_host(settings)
    env = dict(base)
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        AIRFLOW__CORE__DAGS_FOLDER=str(project / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=f"{AIRFLOW_USER}:admin",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(home / "passwords.json"),
        AIRFLOW__API__HOST=settings.host,
        AIRFLOW__API__PORT=str(settings.airflow_port),
        AIRFLOW__API__BASE_URL=f"http://{host}:{settings.airflow_port}",
        AIRFLOW__API__WORKERS="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(project), base.get("PYTHONPATH", "")])),
    )
    return env


def embedded_services(
    settings: Settings, project: Path, replay_speed: float = DEFAULT_REPLAY_SPEED
) -> list[ServiceSpec]:
    """Every service of the stack, in start order, for `settings` run from `project`."""
    host = _reachable_host(settings)
    base = service_env(settings)
    airflow_password(settings)  # the passwords file must exist before Airflow reads it
    http = f"http://{host}"
    replay = ["feed", "replay", "--source", "synthetic", "--speed", f"{replay_speed:g}"]
    return [
        _mlflow_service(settings, project, base),
        _airflow_service(settings, project, base),
        _app_service(
            "replay",
            replay,
            health_url=f"{http}:{settings.replay_rest_port}/api/v3/ping",
            url=f"ws://{host}:{settings.replay_port}",
            env=base,
            cwd=project,
        ),
        _app_service(
            "engine",
            ["live", "run"],
            health_url=f"{http}:{settings.engine_api_port}/health",
            url=f"{http}:{settings.engine_api_port}",
            env=base,
            cwd=project,
        ),
        _app_service(
            "dashboard",
            ["dashboard"],
            health_url=f"{http}:{settings.dashboard_port}/_stcore/health",
            url=f"{http}:{settings.dashboard_port}",
            env=base,
            cwd=project,
        ),
    ]


def _app_service(
    name: str, args: list[str], *, health_url: str, url: str, env: dict[str, str], cwd: Path
) -> ServiceSpec:
    """A `tradepipe` command (`python -m app ARGS`) of this interpreter."""
    argv = [sys.executable, "-m", "app", *args]
    return ServiceSpec(name=name, argv=argv, health_url=health_url, url=url, env=env, cwd=cwd)


def _mlflow_service(settings: Settings, project: Path, base: dict[str, str]) -> ServiceSpec:
    """`mlflow server` on the configured store, its artifacts proxied, one worker."""
    host = _reachable_host(settings)
    store = settings.resolved_mlflow_tracking_uri
    # MLflow 3's server starts a pool of job consumers (GenAI evaluation jobs) by default:
    # a dozen processes the pipeline never uses, on a 2-core machine.
    mlflow_env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **base}
    return ServiceSpec(
        name="mlflow",
        argv=[
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--backend-store-uri",
            store,
            "--registry-store-uri",
            store,
            "--serve-artifacts",
            "--artifacts-destination",
            settings.resolved_mlflow_artifact_root.as_uri(),
            "--host",
            settings.host,
            "--port",
            str(settings.mlflow_port),
            "--workers",
            "1",
            "--allowed-hosts",
            f"{host}:{settings.mlflow_port},localhost:{settings.mlflow_port}",
        ],
        health_url=f"http://{host}:{settings.mlflow_port}/health",
        url=f"http://{host}:{settings.mlflow_port}",
        env=mlflow_env,
        cwd=project,
    )


def _airflow_service(settings: Settings, project: Path, base: dict[str, str]) -> ServiceSpec:
    """`airflow standalone` in its environment (`airflow_env`), healthy by `airflow_healthy`."""
    host = _reachable_host(settings)
    return ServiceSpec(
        name="airflow",
        argv=[str(Path(sys.executable).parent / "airflow"), "standalone"],
        health_url=f"http://{host}:{settings.airflow_port}/api/v2/monitor/health",
        url=f"http://{host}:{settings.airflow_port}",
        env=airflow_env(settings, project, base),
        cwd=project,
        health_check=airflow_healthy,
    )


def airflow_healthy(body: bytes) -> bool:
    """Metadata database, scheduler and DAG processor all report healthy."""
    try:
        report = json.loads(body)
        parts = ("metadatabase", "scheduler", "dag_processor")
        return all(report[part]["status"] == "healthy" for part in parts)
    except (ValueError, KeyError, TypeError):
        return False
