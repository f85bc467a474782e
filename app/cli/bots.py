"""Bot commands: the database is the single source of bot configuration."""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from app.cli.common import (
    UserError,
    console,
    database_session,
    error_console,
    fail,
    settings,
    user_errors,
)

if TYPE_CHECKING:
    from tradepipe.bots import NewBot
    from tradepipe.config import Settings
    from tradepipe.db import BotView
    from tradepipe.enums import BotMode

bots_app = typer.Typer(
    help="Bots: add, set, list, show, enable, disable, remove.", no_args_is_help=True
)


def _bot_errors() -> tuple[type[BaseException], ...]:
    from tradepipe.bots import BotError

    return (BotError,)


# Risk limits (README, "Risk limits"); at `bots set`, 0 removes a limit.
DailyLossOption = Annotated[
    float | None,
    typer.Option(help="stop entries for the UTC day after this realised net loss (quote)"),
]
DrawdownOption = Annotated[
    float | None,
    typer.Option(help="stop entries after this % fall from the equity peak, until re-enabled"),
]
ExposureOption = Annotated[
    float | None,
    typer.Option(help="quote currency all bots may commit in this bot's symbol"),
]


@bots_app.command("add")
def bots_add(
    name: Annotated[str, typer.Argument(help="1-20 letters, digits or _")],
    strategy: Annotated[str, typer.Option(help="strategy name (file stem in strategies/)")],
    symbol: Annotated[str, typer.Option(help="e.g. BTCUSDT")],
    timeframe: Annotated[str, typer.Option(help="candle interval, e.g. 1m")],
    capital: Annotated[float, typer.Option(help="quote currency per entry")],
    take_profit_pct: Annotated[float, typer.Option(help="exit this % above entry")],
    stop_loss_pct: Annotated[float, typer.Option(help="exit this % below entry")],
    max_holding_seconds: Annotated[float, typer.Option(help="close after this long")],
    maker_timeout_seconds: Annotated[
        float, typer.Option(help="cancel an unfilled limit entry")
    ] = 60.0,
    max_open_positions: Annotated[int, typer.Option(help="pending + active at once")] = 1,
    trailing_stop_pct: Annotated[
        float | None, typer.Option(help="trail a stop this % behind the best price seen")
    ] = None,
    confidence_threshold: Annotated[float, typer.Option(help="model probability to enter")] = 0.5,
    model: Annotated[str | None, typer.Option(help="registered MLflow model it consumes")] = None,
    model_alias: Annotated[str, typer.Option(help="alias of that model")] = "champion",
    exchange: Annotated[str, typer.Option(help="the venue (the engine trades binance)")] = (
        "binance"
    ),
    skip_symbol_check: Annotated[
        bool,
        typer.Option(help="do not ask the venue whether it lists the symbol (venue unreachable)"),
    ] = False,
    mode: Annotated[str, typer.Option(help="paper, testnet or live")] = "paper",
    credentials: Annotated[
        str | None,
        typer.Option(
            help="testnet/live: NAME of the credential set (NAME_API_KEY, NAME_API_SECRET)"
        ),
    ] = None,
    confirm_mode: Annotated[
        str | None, typer.Option(help="testnet/live: repeat the mode to opt in to real orders")
    ] = None,
    notify: Annotated[
        list[str] | None, typer.Option(help="notifier name from the settings (repeatable)")
    ] = None,
    notify_events: Annotated[
        str | None,
        typer.Option(help="comma-separated: entries,exits,errors,model_swaps,strategy_changes"),
    ] = None,
    enabled: Annotated[bool, typer.Option("--enabled/--disabled")] = True,
    param: Annotated[
        list[str] | None,
        typer.Option(help="strategy parameter KEY=VALUE (VALUE as JSON, else text); repeat"),
    ] = None,
    daily_loss_limit: DailyLossOption = None,
    max_drawdown_pct: DrawdownOption = None,
    max_symbol_exposure: ExposureOption = None,
) -> None:
    """Add a bot; every setting is validated before anything is written. Testnet and live
    need --credentials and --confirm-mode; live also the allow_live_trading setting."""
    from tradepipe.botconfig import BotConfigError, parse_bot_config
    from tradepipe.bots import NewBot

    current = settings()
    with user_errors((*_bot_errors(), BotConfigError)):
        options = _config_options(
            capital, take_profit_pct, stop_loss_pct, max_holding_seconds, maker_timeout_seconds,
            max_open_positions, confidence_threshold, model, model_alias, credentials, notify,
            notify_events, param,
        ) | _removable_fields(
            trailing_stop_pct=trailing_stop_pct, daily_loss_limit=daily_loss_limit,
            max_drawdown_pct=max_drawdown_pct, max_symbol_exposure=max_symbol_exposure,
        )  # fmt: skip
        config = parse_bot_config(options, bot=name)
        new = NewBot(
            name, strategy, symbol, timeframe, config, exchange, _bot_mode(mode), enabled,
            confirmed_mode=None if confirm_mode is None else _bot_mode(confirm_mode),
        )  # fmt: skip
        bot = _add_bot(new, current, check_symbol=not skip_symbol_check)
    console.print(f"added bot {bot.name}: {bot.strategy_name} on {bot.symbol} {bot.timeframe}")


def _bot_mode(given: str) -> BotMode:
    from tradepipe.enums import BotMode

    try:
        return BotMode(given)
    except ValueError:
        raise UserError(f"unknown mode {given!r}: choose paper, testnet or live") from None


def _add_bot(new: NewBot, current: Settings, *, check_symbol: bool) -> BotView:
    """`new` written, checked against the settings (strategies, live trading allowed,
    notifiers) and, with `check_symbol`, the venue's listing of its symbol."""
    from tradepipe.bots import add_bot, check_listed

    listed = (
        functools.partial(
            check_listed,
            rest_url=current.resolved_feed_rest_url,
            timeout_seconds=current.ccxt_timeout_seconds,
        )
        if check_symbol
        else None
    )
    with database_session() as session:
        return add_bot(
            session,
            new,
            current.strategies_dir,
            allow_live_trading=current.allow_live_trading,
            known_notifiers=current.notifiers.keys(),
            listed=listed,
        )


def _config_options(
    capital: float | None,
    take_profit_pct: float | None,
    stop_loss_pct: float | None,
    max_holding_seconds: float | None,
    maker_timeout_seconds: float | None,
    max_open_positions: int | None,
    confidence_threshold: float | None,
    model: str | None,
    model_alias: str | None,
    credentials: str | None,
    notify: list[str] | None,
    notify_events: str | None,
    param: list[str] | None,
) -> dict[str, object]:
    """The BotConfig fields the options give (those not given are left out: `bots add`
    then takes the config's defaults, `bots set` leaves them as they are)."""
    given: dict[str, object | None] = {
        "capital_per_trade": capital,
        "take_profit_pct": take_profit_pct,
        "stop_loss_pct": stop_loss_pct,
        "max_holding_seconds": max_holding_seconds,
        "maker_order_timeout_seconds": maker_timeout_seconds,
        "max_open_positions": max_open_positions,
        "confidence_threshold": confidence_threshold,
        "model_name": model,
        "model_alias": model_alias,
        "credentials": credentials,
        "notifiers": None if notify is None else tuple(notify),
        "notify_events": None if notify_events is None else _csv(notify_events),
        "strategy_parameters": None if param is None else _parameters(param),
    }
    return {key: value for key, value in given.items() if value is not None}


def _removable_fields(**given: float | None) -> dict[str, object]:
    """Optional config fields given as options: not given leaves them out, 0 means none
    (so `bots set` can remove a trailing stop or a risk limit)."""
    return {key: value or None for key, value in given.items() if value is not None}


def _parameters(items: list[str]) -> dict[str, object]:
    parameters: dict[str, object] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--param {item!r}: expected KEY=VALUE")
        try:
            parameters[key.strip()] = json.loads(text)
        except ValueError:
            parameters[key.strip()] = text
    return parameters


@bots_app.command("set")
def bots_set(
    name: str,
    capital: Annotated[float | None, typer.Option(help="quote currency per entry")] = None,
    take_profit_pct: Annotated[float | None, typer.Option(help="exit this % above entry")] = None,
    stop_loss_pct: Annotated[float | None, typer.Option(help="exit this % below entry")] = None,
    max_holding_seconds: Annotated[float | None, typer.Option(help="close after this long")] = None,
    maker_timeout_seconds: Annotated[
        float | None, typer.Option(help="cancel an unfilled limit entry")
    ] = None,
    max_open_positions: Annotated[int | None, typer.Option(help="pending + active")] = None,
    trailing_stop_pct: Annotated[
        float | None, typer.Option(help="trail a stop this % behind the best price; 0: none")
    ] = None,
    confidence_threshold: Annotated[
        float | None, typer.Option(help="model probability to enter")
    ] = None,
    model: Annotated[str | None, typer.Option(help="registered MLflow model it consumes")] = None,
    model_alias: Annotated[str | None, typer.Option(help="alias of that model")] = None,
    credentials: Annotated[str | None, typer.Option(help="NAME of the credential set")] = None,
    notify: Annotated[
        list[str] | None, typer.Option(help="notifier name (repeatable; replaces the list)")
    ] = None,
    notify_events: Annotated[
        str | None, typer.Option(help="comma-separated categories (replaces the list)")
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(help="strategy parameter KEY=VALUE (JSON), merged; KEY=null removes it"),
    ] = None,
    daily_loss_limit: DailyLossOption = None,
    max_drawdown_pct: DrawdownOption = None,
    max_symbol_exposure: ExposureOption = None,
    move_open: Annotated[
        bool, typer.Option(help="also give its open positions the new TP / SL / timeout")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the change as JSON")] = False,
) -> None:
    """Change a bot's configuration, validated as at `bots add`; a running engine applies it
    to the next entry (open positions keep their barriers unless --move-open). Recorded with
    who and the old and new values (`tradepipe bots show NAME`)."""
    from app.cli.models import operator_name
    from tradepipe.bot_changes import change_bot_config

    changes = _config_options(
        capital, take_profit_pct, stop_loss_pct, max_holding_seconds, maker_timeout_seconds,
        max_open_positions, confidence_threshold, model, model_alias, credentials, notify,
        notify_events, param,
    ) | _removable_fields(
        trailing_stop_pct=trailing_stop_pct, daily_loss_limit=daily_loss_limit,
        max_drawdown_pct=max_drawdown_pct, max_symbol_exposure=max_symbol_exposure,
    )  # fmt: skip
    if not changes and not move_open:
        fail("nothing to set: give at least one option (see --help)")
    current = settings()
    with user_errors(_bot_errors()), database_session() as session:
        done = change_bot_config(
            session,
            name,
            changes,
            by=operator_name(),
            strategies_dir=current.strategies_dir,
            known_notifiers=current.notifiers.keys(),
            move_open=move_open,
        )
    if move_open:
        error_console.print(
            f"bot {name}: its open positions take the configured barriers at the next poll of "
            "the engine running it (event position_barriers_moved, or operator_request_refused)"
        )
    if as_json:
        print(json.dumps(done.to_dict(), sort_keys=True))
    elif not done.new:
        console.print(f"bot {name}: nothing changed")
    else:
        for key, value in done.new.items():
            console.print(f"bot {name}: {key} {done.old[key]!r} -> {value!r}", highlight=False)


@bots_app.command("assign")
def bots_assign(
    name: str, strategy: Annotated[str, typer.Argument(help="strategy name (file stem)")]
) -> None:
    """Run another strategy in a bot (its positions stay); a running engine applies it at
    its next look at the bots table. Also how a bot that fell back goes back."""
    from tradepipe.bots import set_strategy

    current = settings()
    with user_errors(_bot_errors()), database_session() as session:
        bot = set_strategy(session, name, strategy, current.strategies_dir)
    console.print(f"bot {bot.name} runs {bot.strategy_name} from now on")


def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


@bots_app.command("list")
def bots_list() -> None:
    """Every bot with its state."""
    from tradepipe.db import list_bots

    with database_session() as session:
        bots = list_bots(session)
    if not bots:
        console.print(
            "no bots yet: add one with `tradepipe bots add NAME --strategy ema_rsi "
            "--symbol BTCUSDT --timeframe 1m --capital 100 --take-profit-pct 1 "
            "--stop-loss-pct 1 --max-holding-seconds 3600`"
        )
        return
    table = Table("bot", "strategy", "symbol", "timeframe", "mode", "enabled", "status", "error")
    for bot in bots:
        problem = bot.last_error or bot.config_error or ""
        table.add_row(
            bot.name, bot.strategy_name, bot.symbol, bot.timeframe, bot.mode.value,
            "yes" if bot.enabled else "no", bot.status.value, problem,
        )  # fmt: skip
    console.print(table)


@bots_app.command("show")
def bots_show(
    name: str, orders: Annotated[int, typer.Option(help="latest orders shown")] = 20
) -> None:
    """One bot: its configuration and its recent changes, open positions, latest orders."""
    from tradepipe.bot_changes import CHANGE_EVENT
    from tradepipe.db import get_bot, list_orders, list_positions, recent_events

    with database_session() as session:
        bot = get_bot(session, name)
        if bot is None:
            raise UserError(f"no bot called {name!r} (see `tradepipe bots list`)")
        positions = list_positions(session, bot=name, status=("pending", "active"))
        recent = list_orders(session, bot=name, limit=orders)
        changes = recent_events(session, kind=CHANGE_EVENT, bot=name, limit=10)
    _print_bot(bot)
    if changes:
        table = Table("time", "by", "setting", "old", "new", title="configuration changes")
        for event in changes:
            change = event.payload
            for key, value in change.get("new", {}).items():
                table.add_row(
                    event.created_at.strftime("%Y-%m-%d %H:%M:%S"), str(change.get("by", "")),
                    key, str(change.get("old", {}).get(key)), str(value),
                )  # fmt: skip
        console.print(table)
    console.print(f"open positions: {len(positions)}")
    if not recent:
        console.print("no orders yet")
        return
    table = Table("time", "client order id", "role", "side", "type", "price", "quantity",
                  "status", "strategy", "model", title="latest orders")  # fmt: skip
    for order in recent:
        table.add_row(
            order.created_at.strftime("%Y-%m-%d %H:%M:%S"), order.client_order_id,
            order.role.value, order.side.value, order.order_type.value,
            "" if order.price is None else f"{order.price:g}", f"{order.quantity:g}",
            order.status.value, order.strategy_hash[:12], order.model_version or "",
        )  # fmt: skip
    console.print(table)


def _print_bot(bot: BotView) -> None:
    table = Table("setting", "value", title=f"bot {bot.name}")
    for key, value in (
        ("strategy", bot.strategy_name), ("symbol", bot.symbol), ("exchange", bot.exchange),
        ("timeframe", bot.timeframe), ("mode", bot.mode.value),
        ("enabled", "yes" if bot.enabled else "no"), ("status", bot.status.value),
        ("last error", bot.last_error or ""),
    ):  # fmt: skip
        table.add_row(key, value)
    if bot.config is not None:
        for key, value in bot.config.model_dump(mode="json").items():
            table.add_row(key, str(value))
    else:
        table.add_row("config", f"invalid: {bot.config_error}")
    console.print(table)


def _switch(name: str, enabled: bool) -> None:
    from tradepipe.bots import set_enabled

    with user_errors(_bot_errors()), database_session() as session:
        set_enabled(session, name, enabled)
    console.print(f"bot {name} {'enabled' if enabled else 'disabled'}")


@bots_app.command("enable")
def bots_enable(name: str) -> None:
    """Let a bot trade (a running engine picks it up)."""
    _switch(name, True)


@bots_app.command("disable")
def bots_disable(name: str) -> None:
    """Stop a bot taking new entries (a running engine picks it up)."""
    _switch(name, False)


@bots_app.command("remove")
def bots_remove(name: str) -> None:
    """Delete a bot that never traded (one with history can only be disabled)."""
    from tradepipe.bots import remove_bot

    with user_errors(_bot_errors()), database_session() as session:
        remove_bot(session, name)
    console.print(f"bot {name} removed")
