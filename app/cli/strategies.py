"""Strategy commands: the registry (the `strategies` table) and the files behind it.

`list` and `show` read the registry through the query layer, as the dashboard does; `sync`
brings it in line with the strategies folder through the one registry sync that the engine
and the strategy_sync DAG run too (one transaction; `--json` for scripts); `validate` runs
a file through the same validation the engine applies before a version may trade, without
touching the database, so an author can check a file before dropping it in the folder.
Strategy errors and file paths may contain square brackets, which rich would read as markup:
they are escaped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from app.cli.common import console, database_session, fail, settings, user_errors

if TYPE_CHECKING:
    from tradepipe.botconfig import BotConfig
    from tradepipe.db import StrategyView
    from tradepipe.strategy.registry_sync import SyncReport

strategies_app = typer.Typer(
    help="Strategies: list, show, sync the registry with the folder, validate a file.",
    no_args_is_help=True,
)


def _short(digest: str) -> str:
    return digest[:12]


@strategies_app.command("list")
def strategies_list() -> None:
    """Every registered strategy with its status, version and error."""
    from tradepipe.db import list_strategies

    with database_session() as session:
        strategies = list_strategies(session)
    if not strategies:
        console.print(
            "no strategies registered yet: `tradepipe strategies sync` registers the files "
            "of the strategies folder"
        )
        return
    table = Table("strategy", "status", "versions", "hash", "class", "error")
    for strategy in strategies:
        table.add_row(
            strategy.name, strategy.status.value, str(strategy.version_count),
            _short(strategy.content_hash), strategy.class_name, escape(strategy.error or ""),
        )  # fmt: skip
    console.print(table)


@strategies_app.command("show")
def strategies_show(name: str) -> None:
    """One strategy: its registry entry, its error (file:line) and the bots using it."""
    from tradepipe.db import get_strategy

    with database_session() as session:
        detail = get_strategy(session, name)
    if detail is None:
        fail(
            f"no strategy called {escape(repr(name))} in the registry (see `tradepipe "
            "strategies list`; `tradepipe strategies sync` registers new files)"
        )
    _print_strategy(detail.strategy)
    if detail.strategy.error:  # the loader's `file:line: message`
        console.print(f"error: {escape(detail.strategy.error)}")
    if not detail.bots:
        console.print("no bots use it")
        return
    table = Table("bot", "symbol", "timeframe", "mode", "enabled", "status", title="bots using it")
    for bot in detail.bots:
        table.add_row(
            bot.name, bot.symbol, bot.timeframe, bot.mode.value,
            "yes" if bot.enabled else "no", bot.status.value,
        )  # fmt: skip
    console.print(table)


def _print_strategy(strategy: StrategyView) -> None:
    table = Table("field", "value", title=f"strategy {strategy.name}")
    for key, value in (
        ("status", strategy.status.value), ("class", strategy.class_name),
        ("file", strategy.file_path), ("content hash", strategy.content_hash),
        ("versions", str(strategy.version_count)),
        ("updated", strategy.updated_at.strftime("%Y-%m-%d %H:%M:%S")),
    ):  # fmt: skip
        table.add_row(key, escape(value))
    console.print(table)


@strategies_app.command("sync")
def strategies_sync(
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Bring the registry in line with the strategies folder and report what changed.

    One transaction; the report lists added, edited, invalid (with file:line) and removed
    strategies. Running it again on an unchanged folder changes nothing."""
    from tradepipe.strategy.registry_sync import StrategySyncError, sync_strategies

    folder = settings().strategies_dir
    with user_errors((StrategySyncError,)), database_session() as session:
        report = sync_strategies(session, folder)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), sort_keys=True))
        return
    _print_report(report)


def _print_report(report: SyncReport) -> None:
    if report.changed:
        table = Table("change", "strategy", "status", "versions", "hash", "error")
        for change, rows in (
            ("added", report.added), ("edited", report.edited),
            ("invalid", report.invalid), ("removed", report.removed),
        ):  # fmt: skip
            for row in rows:
                table.add_row(
                    change, row.name, row.status.value, str(row.version_count),
                    _short(row.content_hash), escape(row.error or ""),
                )  # fmt: skip
        console.print(table)
    console.print(f"synced: {escape(report.summary())}")


@strategies_app.command("validate")
def strategies_validate(
    file: Annotated[Path, typer.Argument(help="a strategy file (.py)")],
    bot: Annotated[
        list[str] | None,
        typer.Option(help="also check against this bot's config (repeatable; reads the database)"),
    ] = None,
    budget_seconds: Annotated[
        float | None, typer.Option(help="time budget of the smoke run (default: the engine's)")
    ] = None,
) -> None:
    """Validate a strategy file as the engine does before it may trade.

    It loads in isolation, defines one strategy class, its parameters validate, and a smoke
    run over synthetic candles finishes within the budget. Exit 1 with file:line if not."""
    from tradepipe.strategy import StrategyLoadError
    from tradepipe.strategy.preflight import check_strategy_source

    try:
        source = file.read_bytes()
    except OSError as error:
        fail(f"cannot read {escape(str(file))}: {error.strerror or error}")
    configs = _bot_configs(bot or [])
    try:
        check = check_strategy_source(source, file, configs=configs, budget_seconds=budget_seconds)
    except (StrategyLoadError, ValueError) as error:  # ValueError: a budget <= 0
        fail(escape(str(error)))
    checked = f" against {', '.join(sorted(configs))}" if configs else ""
    console.print(
        f"OK {escape(str(file))}: class {check.class_name}, hash {check.content_hash}{checked} "
        f"({check.decisions} decisions, {check.entries} entries in {check.seconds:.2f} s "
        "of smoke run)"
    )


def _bot_configs(names: list[str]) -> dict[str, BotConfig]:
    if not names:
        return {}
    from tradepipe.db import get_bot

    configs: dict[str, BotConfig] = {}
    with database_session() as session:
        for name in names:
            view = get_bot(session, name)
            if view is None:
                fail(f"no bot called {escape(repr(name))} (see `tradepipe bots list`)")
            if view.config is None:
                problem = escape(view.config_error or "")
                fail(f"bot {escape(repr(name))} has an invalid config: {problem}")
            configs[name] = view.config
    return configs
