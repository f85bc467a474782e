"""The `tradepipe` command: the one composition root.

It wires the kernel to the research and live sides, importing them lazily inside commands so
that `tradepipe --help` stays fast and the kernel never depends on them. Every error a user
can cause ends in one line on stderr and exit status 1; usage errors exit 2 (Typer's own).
One module per command group; `common` holds what they share.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from app.cli.bots import bots_app
from app.cli.common import console, error_console
from app.cli.data import data_app
from app.cli.demo import demo_app
from app.cli.engines import engines_app
from app.cli.kill_switch import kill_switch_app
from app.cli.live import feed_app, live_app
from app.cli.models import models_app
from app.cli.platform import db_app, platform_app
from app.cli.positions import positions_app
from app.cli.research import backtest, features_app, research_app
from app.cli.strategies import strategies_app
from tradepipe import __version__

app = typer.Typer(
    name="tradepipe",
    help="Research-to-live crypto trading pipeline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(db_app, name="db")
app.add_typer(data_app, name="data")
app.add_typer(features_app, name="features")
app.add_typer(bots_app, name="bots")
app.add_typer(positions_app, name="positions")
app.add_typer(strategies_app, name="strategies")
app.add_typer(feed_app, name="feed")
live_app.add_typer(kill_switch_app, name="kill-switch")
app.add_typer(live_app, name="live")
app.add_typer(engines_app, name="engines")
app.add_typer(research_app, name="research")
app.add_typer(models_app, name="models")
app.command("backtest")(backtest)
app.registered_commands.extend(platform_app.registered_commands)
app.registered_commands.extend(demo_app.registered_commands)


def version_callback(value: bool) -> None:
    if value:
        console.print(f"tradepipe {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=version_callback, is_eager=True)
    ] = False,
) -> None:
    """Research-to-live crypto trading pipeline. State lives under var/ by default."""
    # MLflow and Alembic announce routine work (table creation, migrations) at INFO on
    # stderr; a command's own output says what happened.
    for noisy in ("mlflow", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main() -> None:
    """Entry point of the `tradepipe` script."""
    try:
        app()
    except KeyboardInterrupt:
        error_console.print("interrupted")
        sys.exit(130)
