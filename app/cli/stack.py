"""`tradepipe up` and `tradepipe down`: the embedded stack as background services.

`up`, in order, each step idempotent so that running it again is safe:
1. local state: folders under var/ and the migrated trading database;
2. services: each one not already running (its pid file names a live process of ours) has
   its ports checked first (a port in use fails `up` naming the service and the setting
   before anything starts), then all start at once and `up` waits until every one answers
   its health check, or fails naming the one that did not and its log file;
3. bootstrap: the specs' synthetic candles ingested; unless every spec's model has a
   champion already, `model_lifecycle` is unpaused and triggered through Airflow's REST API
   and waited for (the scheduler runs it as it would any run: it shows in the UI); then the
   demo bots are registered (paper mode);
4. a table of every URL, login and log file.

`down` stops, in reverse order, exactly the process groups named by the pid files of
var/run (see app.services.supervisor), and nothing else.
"""

from __future__ import annotations

import socket
from pathlib import Path

from rich.table import Table

from app.cli.common import UserError, console
from app.services import stack, supervisor
from app.services.airflow_api import AirflowApi, AirflowApiError, manual_run_id
from tradepipe.config import Settings

__all__ = ["bring_down", "bring_up", "project_folder"]

HEALTH_TIMEOUT_SECONDS = 420.0
LIFECYCLE_TIMEOUT_SECONDS = 1800.0
LIFECYCLE_DAG = "model_lifecycle"

# The Settings field behind each service's ports, for the message of a port in use.
_PORTS = {
    "mlflow": ("mlflow_port",),
    "airflow": ("airflow_port",),
    "replay": ("replay_port", "replay_rest_port"),
    "engine": ("engine_api_port",),
    "dashboard": ("dashboard_port",),
}


def project_folder() -> Path:
    """The working directory, which must be the project folder: Airflow reads dags/ there
    and the specs name their strategy files relative to it."""
    here = Path.cwd()
    if not (here / "dags").is_dir():
        raise UserError(f"{here} has no dags/ folder: run this from the tradepipe project folder")
    return here


def bring_up(settings: Settings, project: Path, replay_speed: float) -> None:
    """Steps 2 to 4 of the module docstring (the caller prepared the local state)."""
    run_dir = stack.run_dir(settings)
    specs = stack.embedded_services(settings, project, replay_speed)
    to_start = []
    for spec in specs:
        record = supervisor.running(run_dir, spec.name)
        if record is not None:
            console.print(f"{spec.name}: already running (pid {record.pid}), kept")
        else:
            _check_ports(settings, spec.name)
            to_start.append(spec)
    for spec in to_start:
        record = supervisor.start(spec, run_dir)
        console.print(f"{spec.name}: started (pid {record.pid}), log {run_dir / spec.name}.log")
    # The engine reports healthy only once it runs bots, which the bootstrap registers.
    engine = [spec for spec in specs if spec.name == "engine"]
    _wait([spec for spec in specs if spec.name != "engine"], run_dir)
    _bootstrap(settings, project, specs)
    _wait(engine, run_dir)
    _print_table(settings, specs, run_dir)


def _wait(specs: list[supervisor.ServiceSpec], run_dir: Path) -> None:
    names = ", ".join(spec.name for spec in specs)
    console.print(f"waiting for {names} to answer their health checks ...")
    try:
        supervisor.wait_healthy(
            specs,
            run_dir,
            HEALTH_TIMEOUT_SECONDS,
            on_ready=lambda spec: console.print(f"{spec.name}: healthy at {spec.health_url}"),
        )
    except supervisor.ServiceError as error:
        raise UserError(f"{error} (`tradepipe down` stops what did start)") from None


def bring_down(settings: Settings) -> None:
    run_dir = stack.run_dir(settings)
    for name in reversed(stack.SERVICE_ORDER):
        signalled = supervisor.stop(run_dir, name)
        if signalled:
            console.print(f"{name}: stopped ({len(signalled)} processes)")
        else:
            console.print(f"{name}: not running")


def _check_ports(settings: Settings, name: str) -> None:
    for field in _PORTS[name]:
        port = int(getattr(settings, field))
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((settings.host, port))
            except OSError:
                raise UserError(
                    f"{name} cannot start: port {port} on {settings.host} is in use by another "
                    f"process; free it or set TRADEPIPE_{field.upper()}"
                ) from None


def _bootstrap(settings: Settings, project: Path, specs: list[supervisor.ServiceSpec]) -> None:
    from research.orchestration.bootstrap import ingest_spec_data, register_demo_bots
    from research.orchestration.config import discover_specs, load_orchestration_config
    from research.training import load_spec
    from tradepipe.registry import ModelRegistry

    config = load_orchestration_config()
    for line in ingest_spec_data(settings, config):
        console.print(f"bootstrap: candles {line}")
    registry = ModelRegistry(settings.resolved_mlflow_tracking_uri)
    models = [load_spec(path).registered_model for path in discover_specs(config)]
    missing = [model for model in models if registry.champion(model) is None]
    if missing:
        console.print(f"bootstrap: no champion for {', '.join(missing)}: running {LIFECYCLE_DAG}")
        _run_lifecycle(settings, specs)
        still = [model for model in missing if registry.champion(model) is None]
        if still:
            raise UserError(
                f"bootstrap: {LIFECYCLE_DAG} succeeded but {', '.join(still)} has no champion "
                "(its gates refused it: see the model_promotions table or MLflow)"
            )
    else:
        console.print(f"bootstrap: champions exist for {', '.join(models) or 'no spec'}")
    # 1 s bots: the replay plays 60 times faster than real time (app.services.stack).
    for line in register_demo_bots(settings, "1s"):
        console.print(f"bootstrap: bot {line}")


def _run_lifecycle(settings: Settings, specs: list[supervisor.ServiceSpec]) -> None:
    airflow = next(spec for spec in specs if spec.name == "airflow")
    try:
        api = AirflowApi(airflow.url, stack.AIRFLOW_USER, stack.airflow_password(settings))
        api.wait_for_dag(LIFECYCLE_DAG, timeout_seconds=300)
        api.set_paused(LIFECYCLE_DAG, False)
        run_id = api.trigger(LIFECYCLE_DAG, manual_run_id("tradepipe_up"))
        console.print(f"bootstrap: {LIFECYCLE_DAG} run {run_id} triggered, waiting ...")
        state = api.wait_for_run(LIFECYCLE_DAG, run_id, LIFECYCLE_TIMEOUT_SECONDS)
        if state != "success":
            failed = [k for k, v in api.task_states(LIFECYCLE_DAG, run_id).items() if v == "failed"]
            raise UserError(
                f"bootstrap: {LIFECYCLE_DAG} run {run_id} {state} (failed tasks: "
                f"{', '.join(failed) or 'none'}); see its task logs in the Airflow UI at "
                f"{airflow.url} or under {settings.resolved_airflow_home / 'logs'}"
            )
    except AirflowApiError as error:
        raise UserError(f"bootstrap: Airflow API: {error}") from None
    console.print(f"bootstrap: {LIFECYCLE_DAG} run {run_id} succeeded")


def _print_table(settings: Settings, specs: list[supervisor.ServiceSpec], run_dir: Path) -> None:
    logins = {
        "airflow": f"{stack.AIRFLOW_USER} / {stack.airflow_password(settings)}",
        "engine": f"control routes: Bearer token in {settings.state_dir / 'engine_api_token'}"
        if settings.engine_api_token is None
        else "control routes: Bearer $TRADEPIPE_ENGINE_API_TOKEN",
        "dashboard": "none on loopback" if settings.dashboard_password is None else "password set",
    }
    table = Table("service", "URL", "login", "log", title="tradepipe is up")
    for spec in specs:
        table.add_row(
            spec.name, spec.url, logins.get(spec.name, "none"), str(run_dir / f"{spec.name}.log")
        )
    console.print(table)
    console.print("stop everything with `make down` (or `tradepipe down`)")
