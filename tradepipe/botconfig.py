"""A bot's trading parameters: the frozen, validated model behind `bots.config`.

The database stores the config as JSON so new optional fields need no migration; every
write and read goes through `BotConfig`, so a bad value is refused with a message naming
the field instead of surfacing later inside the engine.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tradepipe.notifications import NOTIFIER_NAME, NotifyCategory
from tradepipe.secrets import check_secret_name
from tradepipe.validation import describe_validation_error

__all__ = ["BotConfig", "BotConfigError", "NotifyCategory", "parse_bot_config"]


class BotConfigError(ValueError):
    """A bot config that does not validate; the message names every bad field."""


class BotConfig(BaseModel):
    """How one bot sizes, exits and filters its trades."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    capital_per_trade: float = Field(gt=0, description="quote currency committed per entry")
    take_profit_pct: float = Field(gt=0, description="exit above entry by this percentage")
    stop_loss_pct: float = Field(gt=0, description="exit below entry by this percentage")
    max_holding_seconds: float = Field(gt=0, description="close the position after this long")
    maker_order_timeout_seconds: float = Field(
        gt=0, description="cancel an unfilled maker entry order after this long"
    )
    max_open_positions: int = Field(default=1, ge=1)
    confidence_threshold: float = Field(
        default=0.5, gt=0, lt=1, description="minimum model probability to enter"
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
