"""A bot's trading parameters: the frozen, validated model behind `bots.config`.

The database stores the config as JSON so new optional fields need no migration; every
write and read goes through `BotConfig`, so a bad value is refused with a message naming
the field instead of surfacing later inside the engine.
"""

from __future__ import annotations

import math
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tradepipe.notifications import NOTIFIER_NAME, NotifyCategory
from tradepipe.pydantic_errors import describe_validation_error
from tradepipe.secrets import check_secret_name

__all__ = ["BotConfig", "BotConfigError", "NotifyCategory", "parse_bot_config"]


# The documented bounds (README, "Bots and the replay feed"). Each is far beyond any sane
# bot yet small enough that prices, quantities and millisecond deadlines derived from it
# stay finite and fit the database's columns.
MAX_CAPITAL = 1e9  # quote currency per entry
MAX_TAKE_PROFIT_PCT = 1_000.0  # an exit at 11x the entry price
MAX_STOP_LOSS_PCT = 100.0  # exclusive
MAX_HOLDING_SECONDS = 366 * 86_400.0  # a year
MAX_MAKER_TIMEOUT_SECONDS = 30 * 86_400.0  # a month (a backtest default: 3 candles of 7d)
MAX_OPEN_POSITIONS = 1_000
MAX_DAILY_LOSS = MAX_CAPITAL * MAX_OPEN_POSITIONS  # quote currency: all a bot can commit
MAX_SYMBOL_EXPOSURE = MAX_CAPITAL * MAX_OPEN_POSITIONS


class BotConfigError(ValueError):
    """A bot config that does not validate; the message names every bad field."""


class BotConfig(BaseModel):
    """How one bot sizes, exits and filters its trades."""

    # allow_inf_nan=False: `inf` or `nan` from a command line or a hand-edited row is refused
    # with the field's name instead of overflowing later inside the engine.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    capital_per_trade: float = Field(
        gt=0, le=MAX_CAPITAL, description="quote currency committed per entry"
    )
    take_profit_pct: float = Field(
        gt=0, le=MAX_TAKE_PROFIT_PCT, description="exit above entry by this percentage"
    )
    # Below 100 %: a stop at or beyond it would sit at a price of zero or less, i.e. no stop.
    stop_loss_pct: float = Field(
        gt=0, lt=MAX_STOP_LOSS_PCT, description="exit below entry by this percentage"
    )
    max_holding_seconds: float = Field(
        gt=0, le=MAX_HOLDING_SECONDS, description="close the position after this long"
    )
    maker_order_timeout_seconds: float = Field(
        gt=0,
        le=MAX_MAKER_TIMEOUT_SECONDS,
        description="cancel an unfilled maker entry order after this long",
    )
    # None: no trailing stop. Else a stop this far below the best price seen (the highest
    # high of the candles the position was open through, for a long), never lowered.
    trailing_stop_pct: float | None = Field(
        default=None,
        gt=0,
        lt=MAX_STOP_LOSS_PCT,
        description="trail a stop this percentage behind the best price seen",
    )
    max_open_positions: int = Field(default=1, ge=1, le=MAX_OPEN_POSITIONS)
    confidence_threshold: float = Field(
        default=0.5, gt=0, lt=1, description="minimum model probability to enter"
    )
    # Risk limits (tradepipe/risk.py; README, "Risk limits"); None: no limit.
    daily_loss_limit: float | None = Field(
        default=None,
        gt=0,
        le=MAX_DAILY_LOSS,
        description="quote currency of realised net loss in a UTC day that stops entries",
    )
    max_drawdown_pct: float | None = Field(
        default=None,
        gt=0,
        le=100,
        description="fall from the equity peak, in percent, that stops entries until re-enabled",
    )
    max_symbol_exposure: float | None = Field(
        default=None,
        gt=0,
        le=MAX_SYMBOL_EXPOSURE,
        description="quote currency all bots may commit in this bot's symbol",
    )
    model_name: str | None = Field(default=None, min_length=1, description="MLflow model")
    model_alias: str = Field(default="champion", min_length=1)
    strategy_parameters: dict[str, Any] = Field(
        default_factory=dict,
        description="the strategy's parameters (validated against its Parameters model)",
    )
    # The NAME of a credential set, never a key: the exchange broker resolves
    # <credentials>_API_KEY and <credentials>_API_SECRET (tradepipe.secrets). Testnet and
    # live bots need it; paper bots ignore it.
    credentials: str | None = Field(default=None, description="name of a credential set")
    # Notifiers (by their name in the settings) and the event categories sent to them.
    notifiers: tuple[str, ...] = Field(default=(), description="notifier names in settings")
    notify_events: tuple[NotifyCategory, ...] = Field(
        default=tuple(NotifyCategory), description="categories sent to the notifiers"
    )

    @field_validator("strategy_parameters")
    @classmethod
    def _parameters_are_finite(cls, value: dict[str, Any]) -> dict[str, Any]:
        bad = _non_finite(value)
        if bad is not None:
            raise ValueError(f"{bad}: numbers must be finite (no inf or nan)")
        return value

    @field_validator("credentials")
    @classmethod
    def _credentials_is_a_name(cls, value: str | None) -> str | None:
        return None if value is None else check_secret_name(value, what="credentials")

    @field_validator("notifiers")
    @classmethod
    def _notifier_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not re.match(NOTIFIER_NAME, name):
                raise ValueError(
                    f"notifier {name[:32]!r}: a notifier name from the settings "
                    "(lower-case letters, digits, _ or -)"
                )
        return tuple(dict.fromkeys(value))

    @field_validator("notify_events")
    @classmethod
    def _categories_in_order(cls, value: tuple[NotifyCategory, ...]) -> tuple[NotifyCategory, ...]:
        # One order whatever the input, so equal configs store equal JSON.
        return tuple(category for category in NotifyCategory if category in value)


def parse_bot_config(data: Any, *, bot: str | None = None) -> BotConfig:
    """Validate `data` (a mapping or a BotConfig); raise BotConfigError with one line per
    bad field, e.g. `take_profit_pct: Input should be greater than 0`."""
    if isinstance(data, BotConfig):
        return data
    try:
        return BotConfig.model_validate(data)
    except ValidationError as error:
        problems = describe_validation_error(error, "config")
        owner = f"bot {bot!r}" if bot else "bot config"
        raise BotConfigError(f"invalid {owner}: {problems}") from None


def _non_finite(value: Any, where: str = "strategy_parameters") -> str | None:
    """The path of the first non-finite float inside `value` (JSON-like), or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return where
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = _non_finite(item, f"{where}.{key}")
        if found is not None:
            return found
    return None
