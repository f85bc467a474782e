"""Commands for the platform itself: the database, local state, configuration."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from app.cli.common import console, settings, user_errors
from tradepipe.config import Settings

db_app = typer.Typer(help="The trading database.", no_args_is_help=True)
# Top-level commands (`tradepipe up`, `tradepipe config`) are registered on the root app.
platform_app = typer.Typer()


def upgrade(current: Settings) -> str:
    from tradepipe.db.migrate import upgrade_database

    with user_errors():
        return upgrade_database(current.resolved_database_url)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the trading database to the newest schema (SQLite or PostgreSQL)."""
    current = settings()
    revision = upgrade(current)
    console.print(f"database at revision [bold]{revision}[/]: {_masked(current)}")


def _masked(current: Settings) -> str:
    from tradepipe.db.session import mask_url

    return mask_url(current.resolved_database_url)


@platform_app.command("up")
def up(
    replay_speed: Annotated[
        float, typer.Option(help="synthetic market speed (times real time) of the replay feed")
    ] = 60.0,
) -> None:
    """Set up var/ and the database, start MLflow, Airflow, the replay feed, the engine and
    the dashboard in the background, bootstrap a champion and demo bots, print the URLs.

    Safe to run again: running services are kept, the bootstrap steps are idempotent.
    """
    from app.cli.stack import bring_up, project_folder
    from tradepipe.localstate import prepare_local_state

    current = settings()
    with user_errors():
        project = project_folder()
        report = prepare_local_state(current)
    table = Table("part", "state", title="local state")
    for part, state in report:
        table.add_row(part, state)
    console.print(table)
    with user_errors():
        bring_up(current, project, replay_speed)


@platform_app.command("down")
def down() -> None:
    """Stop exactly the services `tradepipe up` started (their process groups), nothing else."""
    from app.cli.stack import bring_down

    bring_down(settings())


@platform_app.command("config")
def show_config() -> None:
    """Print the effective settings (defaults, TOML file and TRADEPIPE_* variables)."""
    current = settings()
    table = Table("setting", "value")
    for name, value in current.model_dump().items():
        table.add_row(name, str(value))
    table.add_row("(database)", _masked(current))
    table.add_row("(mlflow store)", current.resolved_mlflow_tracking_uri)
    console.print(table)


@platform_app.command("dashboard")
def dashboard() -> None:
    """Serve the Streamlit dashboard on host:dashboard_port until interrupted."""
    import subprocess

    from streamlit_app.launch import command

    current = settings()
    with user_errors():
        argv = command(current)
    console.print(f"dashboard on http://{current.host}:{current.dashboard_port}")
    raise typer.Exit(subprocess.call(argv))
