"""`tradepipe demo --minutes N`: the whole pipeline headless and finite, then a summary.

Stages, in order; the first that fails ends the demo with exit status 1 and a line naming
it (`error: demo stage 'model_lifecycle' failed: ...`):
1. setup: a fresh state folder `<home>/demo` (removed and made again: the demo never
   touches the state of `tradepipe up`), its trading database migrated;
2. ingest: the synthetic candles every model spec trains on;
3. model_lifecycle: the real DAG run by Airflow's `dag.test()` in its own process, with its
   own metadata database under `<home>/demo/airflow` (no scheduler, no server);
4. bots: the demo bots of both default strategies, in paper mode;
5. engine: the replay feed (synthetic market at `--speed` times real time) and the live
   engine with its paper broker, in this process, for N minutes of wall time;
6. summary: models promoted, bots, orders, PnL and errors, read through the query layer.

By default (`--speed 0`) the replay plays the synthetic market as fast as the engine reads
it, from where the specs' training windows end, and the demo bots trade 1 m candles: a
wall minute covers days of market. `--speed X` paces it at X times real time on the wall
clock instead, and the bots trade 1 s candles, as under `tradepipe up`.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.table import Table

from app.cli.common import console, fail, format_ms, settings, user_errors
from app.cli.stack import project_folder

if TYPE_CHECKING:
    from tradepipe.config import Settings

T = TypeVar("T")

demo_app = typer.Typer()


class StageFailed(Exception):
    """A stage's own verdict that it failed (not a bug), with the reason."""


def _stage(name: str, work: Callable[[], T]) -> T:
    console.print(f"[bold]demo: {name}[/]")
    try:
        return work()
    except Exception as error:  # any failure of a stage ends the demo naming the stage
        fail(f"demo stage {name!r} failed: {error}")


@demo_app.command("demo")
def demo(
    minutes: Annotated[
        float, typer.Option(min=0.0, help="wall-clock minutes the engine trades (fractions ok)")
    ] = 2.0,
    speed: Annotated[
        float,
        typer.Option(min=0.0, help="replay speed, times real time; 0 (default): as fast as read"),
    ] = 0.0,
) -> None:
    """Ingest, run model_lifecycle through Airflow's dag.test(), trade the demo bots on
    the replay feed for N minutes, print a summary; exit 1 naming a stage that failed."""
    from tradepipe.config import load_settings

    with user_errors():
        project = project_folder()
    base = settings()
    home = base.state_dir / "demo"
    current = _stage("setup", lambda: _setup(home, load_settings))
    _stage("ingest", lambda: _ingest(current))
    promoted = _stage("model_lifecycle", lambda: _lifecycle(current, project))
    timeframe = "1m" if speed == 0 else "1s"
    _stage("bots", lambda: _bots(current, timeframe))
    _stage("engine", lambda: asyncio.run(_trade(current, minutes * 60, speed)))
    _stage("summary", lambda: _summary(current, promoted))


def _setup(home: Path, load: Callable[..., Settings]) -> Settings:
    from tradepipe.localstate import prepare_local_state

    if home.exists():
        shutil.rmtree(home)
    # Every store under the demo's folder, whatever the caller's settings name (a
    # production database included): the demo writes bots, orders and models.
    current = load(
        home=home,
        database_url="",
        mlflow_tracking_uri="",
        mlflow_artifact_root=None,
        airflow_home=None,
        market_data_dir=None,
        engine_api_port=_closed_port(),
    )
    prepare_local_state(current)
    return current


def _closed_port() -> int:
    """A port nothing listens on: the DAG's engine notification finds no engine (the demo's
    engine has no API), and never reaches the engine of a running `tradepipe up`."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _ingest(current: Settings) -> None:
    from research.orchestration.bootstrap import ingest_spec_data
    from research.orchestration.config import load_orchestration_config

    for line in ingest_spec_data(current, load_orchestration_config()):
        console.print(f"  candles {line}")


def _lifecycle(current: Settings, project: Path) -> list[dict[str, Any]]:
    from app.services.dagtest import run_dag_test
    from app.services.stack import airflow_env, service_env

    base = service_env(current)
    # The DAG's tasks load Settings from the environment: the demo's, field by field.
    base.update(
        TRADEPIPE_ENGINE_API_PORT=str(current.engine_api_port),
        TRADEPIPE_DATABASE_URL=current.resolved_database_url,
        TRADEPIPE_MLFLOW_TRACKING_URI=current.resolved_mlflow_tracking_uri,
        TRADEPIPE_MLFLOW_ARTIFACT_ROOT=str(current.resolved_mlflow_artifact_root),
        TRADEPIPE_AIRFLOW_HOME=str(current.resolved_airflow_home),
        TRADEPIPE_MARKET_DATA_DIR=str(current.resolved_market_data_dir),
    )
    env = airflow_env(current, project, base)
    log = current.state_dir / "model_lifecycle.log"
    result = run_dag_test("model_lifecycle", env, project, log)
    outcomes = [value for key, value in result.xcom.items() if key.startswith("spec.promote[")]
    for outcome in outcomes:
        console.print(f"  {outcome.get('summary', outcome)}")
    if result.state != "success":
        raise StageFailed(
            f"run {result.state}, failed tasks {', '.join(result.failed_tasks) or 'none'}: "
            f"see {log}"
        )
    return outcomes


def _bots(current: Settings, timeframe: str) -> None:
    from research.orchestration.bootstrap import register_demo_bots

    for line in register_demo_bots(current, timeframe):
        console.print(f"  {line}")


async def _trade(current: Settings, seconds: float, speed: float) -> None:
    from live.engine import build_engine
    from live.engine.config import EngineConfig
    from live.engine.status import EngineState
    from live.replay.server import ReplayServer
    from live.replay.sources import SyntheticSource
    from research.orchestration.bootstrap import end_of_spec_windows
    from research.orchestration.config import load_orchestration_config

    # As fast as read, the market keeps its own clock: start where the models' training
    # data ended, so they trade candles they have not seen. Paced, it runs from now.
    start_ms = end_of_spec_windows(load_orchestration_config()) if speed == 0 else None
    source = SyntheticSource(("BTCUSDT",), start_ms=start_ms)
    async with ReplayServer(source, host="127.0.0.1", port=0, rest_port=0, speed=speed) as replay:
        config = EngineConfig.from_settings(current, feed_url=replay.url, rest_url=replay.rest_url)
        engine = build_engine(config)  # the configured feed
        await engine.start()
        try:
            await asyncio.sleep(seconds)
            status = engine.status()
        finally:
            await engine.stop()
    reached = format_ms(status.market_time_ms)
    console.print(
        f"  engine ran {seconds:g} s of wall time, market time reached {reached} UTC, "
        f"state {status.state.value}"
    )
    if status.state is not EngineState.RUNNING:
        raise StageFailed(f"the engine ended {status.state.value}")
    broken = [f"{bot.name}: {bot.last_error}" for bot in status.bots if bot.last_error]
    if broken:
        raise StageFailed("; ".join(broken))


def _summary(current: Settings, promoted: list[dict[str, Any]]) -> None:
    from tradepipe.db import create_engine_for, session_scope
    from tradepipe.db.queries import list_bots, list_orders, pnl_summary, recent_events

    database = create_engine_for(current.resolved_database_url)
    try:
        with session_scope(database) as session:
            bots = list_bots(session)
            pnl = {row.bot_name: row for row in pnl_summary(session).bots}
            orders = {
                bot.name: len(list_orders(session, bot=bot.name, limit=100_000)) for bot in bots
            }
            events = recent_events(session, limit=1000)
    finally:
        database.dispose()
    models = [f"{o['model_name']} v{o['version']}" for o in promoted if o.get("promoted")]
    console.print(f"models promoted: {', '.join(models) or 'none'}")
    table = Table("bot", "strategy", "timeframe", "status", "orders", "trades", "net PnL", "open",
                  title="demo summary")  # fmt: skip
    for bot in bots:
        row = pnl[bot.name]
        net = row.realised_pnl - row.fees
        table.add_row(bot.name, bot.strategy_name, bot.timeframe, bot.status.value,
                      str(orders[bot.name]), str(row.trades), f"{net:.4f}",
                      str(row.open_positions))  # fmt: skip
    console.print(table)
    total = sum(orders.values())
    net_total = sum(row.realised_pnl - row.fees for row in pnl.values())
    console.print(f"bots: {len(bots)}  orders: {total}  net PnL: {net_total:.4f}")
    errors = [f"{bot.name}: {bot.last_error or bot.config_error}" for bot in bots
              if bot.last_error or bot.config_error]  # fmt: skip
    errors += [
        f"{e.kind}: {e.payload.get('message', e.payload)}"
        for e in events
        if "error" in e.kind or "fail" in e.kind
    ]
    console.print(f"errors: {len(errors)}")
    for line in errors[:20]:
        console.print(f"  {line}")
