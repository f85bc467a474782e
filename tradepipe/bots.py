"""Bot management: the one place that creates, changes and removes bots in the database.

The database is the single source of bot configuration: the CLI writes through here, the
live engine reads the table and notices changes. Every check a bot must pass happens before
anything is written, and each failure is a `BotError` naming the input and what to do.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from tradepipe.botconfig import BotConfig
from tradepipe.db.models import Bot, Order, Position
from tradepipe.db.models import Strategy as StrategyRow
from tradepipe.db.queries import get_bot
from tradepipe.db.views import BotView
from tradepipe.enums import BotMode, PositionStatus, StrategyStatus
from tradepipe.timeframes import InvalidTimeframeError, parse_timeframe
from tradepipe.venue_symbols import (
    SymbolListError,
    UnsupportedExchangeError,
    listed_symbol_status,
    symbol_problem,
)
from tradepipe.venue_symbols import check_exchange as venue_exchange

# Client order ids embed the bot name and must fit Binance's 36 characters
# (tradepipe.orders.types.client_order_id), hence the short alphabet and length.
BOT_NAME = re.compile(r"^[A-Za-z0-9_]{1,20}$")
SYMBOL = re.compile(r"^[A-Z0-9]{2,20}$")
# The intervals the live engine builds from its 1 s candles (Binance's kline intervals up
# to a day, plus sub-minute ones for fast strategies).
LIVE_TIMEFRAMES = ("1s", "5s", "15s", "30s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h",
                   "6h", "8h", "12h", "1d")  # fmt: skip
AVAILABLE_MODES = (BotMode.PAPER, BotMode.TESTNET, BotMode.LIVE)  # opt-in: check_mode_opt_in


class BotError(ValueError):
    """A bot that cannot be created or changed as asked; the message says why."""


class UnknownBotError(BotError):
    """No bot of that name."""


class BotConflictError(BotError):
    """The bots table's state forbids it: the name is taken, or the bot has history."""


@dataclass(frozen=True, slots=True)
class NewBot:
    name: str
    strategy: str
    symbol: str
    timeframe: str
    config: BotConfig
    exchange: str = "binance"
    mode: BotMode = BotMode.PAPER
    enabled: bool = True
    # The operator's explicit opt-in: testnet and live bots are created only when this
    # repeats their mode (`--confirm-mode testnet`), so no typo or default places real orders.
    confirmed_mode: BotMode | None = None


def check_name(name: str) -> str:
    if not BOT_NAME.match(name):
        raise BotError(f"bot name {name!r}: use 1-20 letters, digits or _")
    return name


def check_symbol(symbol: str) -> str:
    normalised = re.sub(r"[/\-_]", "", symbol.strip().upper())
    if not SYMBOL.match(normalised):
        raise BotError(f"symbol {symbol!r}: use the exchange's symbol, e.g. BTCUSDT or BTC/USDT")
    return normalised


def check_exchange(exchange: str) -> str:
    try:
        return venue_exchange(exchange)
    except UnsupportedExchangeError as error:
        raise BotError(str(error)) from None


def check_listed(exchange: str, symbol: str, rest_url: str, *, timeout_seconds: float) -> None:
    """The venue at `rest_url` must list `symbol` as trading (its exchangeInfo)."""
    try:
        status = listed_symbol_status(rest_url, symbol, timeout_seconds=timeout_seconds)
    except SymbolListError as error:
        raise BotError(
            f"cannot ask {exchange} whether it lists {symbol} ({error}): start the venue "
            "or the replay, set feed_rest_url, or pass --skip-symbol-check"
        ) from None
    problem = symbol_problem(exchange, symbol, status)
    if problem is not None:
        raise BotError(f"{problem}: use a symbol the venue lists, e.g. BTCUSDT")


def check_timeframe(timeframe: str) -> str:
    try:
        name = parse_timeframe(timeframe).name
    except InvalidTimeframeError as error:
        raise BotError(str(error)) from None
    if name not in LIVE_TIMEFRAMES:
        supported = ", ".join(LIVE_TIMEFRAMES)
        raise BotError(f"timeframe {timeframe!r} is not supported live: use one of {supported}")
    return name


def check_strategy(session: Session, strategy: str, strategies_dir: Path) -> str:
    """A strategy a bot may use: valid in the registry, or a file in the strategies folder
    that loads (the registry may not have synced it yet)."""
    row = session.scalars(sa.select(StrategyRow).where(StrategyRow.name == strategy)).one_or_none()
    if row is not None and row.status is StrategyStatus.VALID:
        return strategy
    path = strategies_dir / f"{strategy}.py"
    if path.is_file():
        from tradepipe.strategy import StrategyLoadError, load_strategy

        try:
            load_strategy(path)
        except StrategyLoadError as error:
            raise BotError(f"strategy {strategy!r} does not load: {error}") from None
        return strategy
    if row is not None:
        raise BotError(
            f"strategy {strategy!r} is {row.status.value}: {row.error or 'see the registry'}"
        )
    known = sorted(p.stem for p in strategies_dir.glob("*.py")) if strategies_dir.is_dir() else []
    raise BotError(
        f"unknown strategy {strategy!r}: known strategies are {', '.join(known) or 'none'}"
    )


def check_parameters(strategy: str, strategies_dir: Path, config: BotConfig) -> None:
    """The config's `strategy_parameters` must validate against the strategy's model."""
    if not config.strategy_parameters:
        return
    from tradepipe.strategy import StrategyLoadError, StrategyParameterError, load_strategy

    try:
        load_strategy(strategies_dir / f"{strategy}.py").create(config.strategy_parameters)
    except StrategyLoadError as error:
        raise BotError(f"strategy {strategy!r} does not load: {error}") from None
    except StrategyParameterError as error:
        raise BotError(f"strategy_parameters do not suit {strategy!r}: {error}") from None
    except Exception as error:  # the strategy's own __init__ refused them
        raise BotError(
            f"strategy {strategy!r} cannot be created with these parameters: "
            f"{type(error).__name__}: {error}"
        ) from None


def check_mode_opt_in(
    mode: BotMode, config: BotConfig, *, confirmed_mode: BotMode | None, allow_live_trading: bool
) -> None:
    """Testnet and live place real orders: each bot opts in explicitly and names its
    credential set; live also needs the platform-wide second confirmation setting."""
    if mode is BotMode.PAPER:
        return
    if config.credentials is None:
        raise BotError(
            f"mode {mode.value} needs the name of a credential set (--credentials NAME): the "
            "engine reads NAME_API_KEY and NAME_API_SECRET from the environment or the "
            "secrets file"
        )
    if confirmed_mode is not mode:
        raise BotError(
            f"mode {mode.value} places real orders on the exchange"
            f"{'' if mode is BotMode.LIVE else ' testnet'}: confirm with --confirm-mode "
            f"{mode.value}"
        )
    live_trading_gate(mode, allow_live_trading)


def live_trading_gate(mode: BotMode, allow_live_trading: bool) -> None:
    """The second confirmation, checked when a bot is created and again when the engine
    starts it (the setting may have been switched off since)."""
    if mode is BotMode.LIVE and not allow_live_trading:
        raise BotError(
            "live trading is switched off: set allow_live_trading "
            "(TRADEPIPE_ALLOW_LIVE_TRADING=true) to confirm that bots may trade real money"
        )


def check_notifiers(config: BotConfig, known_notifiers: Collection[str]) -> None:
    """Every notifier a bot names must be configured in the settings (`notifiers`)."""
    unknown = [name for name in config.notifiers if name not in known_notifiers]
    if unknown:
        configured = ", ".join(sorted(known_notifiers)) or "none"
        raise BotError(
            f"unknown notifier(s) {', '.join(unknown)}: configured notifiers are {configured} "
            "(the `notifiers` setting)"
        )


def add_bot(
    session: Session,
    bot: NewBot,
    strategies_dir: Path,
    *,
    allow_live_trading: bool = False,
    known_notifiers: Collection[str] | None = None,
    listed: Callable[[str, str], None] | None = None,
) -> BotView:
    """Create a bot after every check; `known_notifiers` (the settings' notifier names),
    when given, must include each notifier the bot names; `listed(exchange, symbol)`, when
    given, asks the venue (last: it is the one check that needs the network)."""
    check_name(bot.name)
    exchange = check_exchange(bot.exchange)
    symbol = check_symbol(bot.symbol)
    if known_notifiers is not None:
        check_notifiers(bot.config, known_notifiers)
    if get_bot(session, bot.name) is not None:
        raise BotConflictError(f"a bot called {bot.name!r} exists already")
    check_mode_opt_in(
        bot.mode,
        bot.config,
        confirmed_mode=bot.confirmed_mode,
        allow_live_trading=allow_live_trading,
    )
    if bot.mode not in AVAILABLE_MODES:
        raise BotError(f"mode {bot.mode.value!r} is not available yet: bots trade in paper mode")
    check_parameters(bot.strategy, strategies_dir, bot.config)
    strategy = check_strategy(session, bot.strategy, strategies_dir)
    timeframe = check_timeframe(bot.timeframe)
    if listed is not None:
        listed(exchange, symbol)
    row = Bot(
        name=bot.name,
        strategy_name=strategy,
        symbol=symbol,
        exchange=exchange,
        timeframe=timeframe,
        mode=bot.mode,
        config=bot.config,
        enabled=bot.enabled,
    )
    session.add(row)
    session.flush()
    return _view(session, bot.name)


def set_enabled(session: Session, name: str, enabled: bool) -> BotView:
    bot_row(session, name).enabled = enabled
    session.flush()
    return _view(session, name)


def set_strategy(
    session: Session, name: str, strategy: str, strategies_dir: Path | None = None
) -> BotView:
    """Point bot `name` at `strategy`. With `strategies_dir` the strategy and the bot's
    parameters are checked here; without, the caller (the engine) checked them."""
    row = bot_row(session, name)
    if strategies_dir is not None:
        check_strategy(session, strategy, strategies_dir)
        check_parameters(strategy, strategies_dir, row.bot_config)
    row.strategy_name = strategy
    session.flush()
    return _view(session, name)


def remove_bot(session: Session, name: str) -> None:
    """Delete a bot that never traded. One with history is refused (disable it instead):
    deleting would lose its orders and PnL."""
    row = bot_row(session, name)
    open_positions = session.scalar(
        sa.select(sa.func.count(Position.id)).where(
            Position.bot_id == row.id, Position.status != PositionStatus.CLOSED
        )
    )
    if open_positions:
        raise BotConflictError(
            f"bot {name!r} has {open_positions} open position(s): disable it first"
        )
    orders = session.scalar(sa.select(sa.func.count(Order.id)).where(Order.bot_id == row.id))
    if orders:
        raise BotConflictError(
            f"bot {name!r} has trading history ({orders} orders): disable it instead of removing"
        )
    session.delete(row)
    session.flush()


def bot_row(session: Session, name: str) -> Bot:
    """The bots-table row of `name`; UnknownBotError when there is none."""
    row = session.scalars(sa.select(Bot).where(Bot.name == name)).one_or_none()
    if row is None:
        raise UnknownBotError(f"no bot called {name!r} (see `tradepipe bots list`)")
    return row


def _view(session: Session, name: str) -> BotView:
    view = get_bot(session, name)
    assert view is not None
    return view
