"""Changing a bot's configuration while it runs: the one implementation behind
`tradepipe bots set`, `PATCH /api/bots/NAME` and the Bots page's editor.

A change is validated exactly as `tradepipe bots add` validates a new bot (every number
finite and within its bounds, strategy parameters against the strategy, notifiers against
the settings, a credential set kept for a testnet or live bot), written to the bots table,
and recorded as a `bot_config_changed` event with who, when, and the old and new value of
every field that changed. A running engine applies it at its next look at the bots table,
to the next entry: open positions keep the barriers they were opened with, unless the
operator asks to move them (`move_open`): then a request for the engine running the bot
is written in the same transaction (tradepipe/position_controls.py), and it gives the bot's
active positions the new take-profit, stop-loss and timeout at its next poll.

Only the configuration changes here; a bot's symbol, timeframe, exchange and mode define its
market and its history, so those mean a new bot.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from tradepipe.botconfig import BotConfig, BotConfigError, parse_bot_config
from tradepipe.bots import BotError, bot_row, check_notifiers, check_parameters
from tradepipe.db.models import Event
from tradepipe.enums import BotMode
from tradepipe.position_controls import request_bot_move

__all__ = ["CHANGE_EVENT", "SETTABLE", "BotConfigChange", "change_bot_config"]

CHANGE_EVENT = "bot_config_changed"
SETTABLE = tuple(BotConfig.model_fields)


@dataclass(frozen=True)
class BotConfigChange:
    bot: str
    by: str
    at: str  # ISO 8601, UTC
    old: dict[str, Any]  # the fields that changed, as they were
    new: dict[str, Any]  # and as they are now

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def change_bot_config(
    session: Session,
    name: str,
    changes: Mapping[str, Any],
    *,
    by: str,
    strategies_dir: Path,
    known_notifiers: Collection[str] | None = None,
    move_open: bool = False,
) -> BotConfigChange:
    """Apply `changes` (field -> new value; `strategy_parameters` merges into the current
    ones, a None value there removes the parameter) to bot `name`'s config. BotError names
    an unknown bot or field and every value refused; nothing is written then. A change that
    changes nothing is recorded as nothing (empty old and new) and writes nothing, except
    the request to move the open positions' barriers when `move_open` asks for it."""
    row = bot_row(session, name)
    unknown = sorted(set(changes) - set(SETTABLE))
    if unknown:
        raise BotError(
            f"cannot set {', '.join(unknown)}: settable are {', '.join(SETTABLE)} (a bot's "
            "symbol, timeframe, exchange and mode make a new bot)"
        )
    before = row.bot_config.model_dump(mode="json")
    merged = {**before, **changes}
    if "strategy_parameters" in changes:
        parameters = {**before["strategy_parameters"], **(changes["strategy_parameters"] or {})}
        merged["strategy_parameters"] = {k: v for k, v in parameters.items() if v is not None}
    try:
        config = parse_bot_config(merged, bot=name)
    except BotConfigError as error:
        raise BotError(str(error)) from None
    after = config.model_dump(mode="json")
    if row.mode is not BotMode.PAPER and config.credentials is None:
        raise BotError(f"bot {name!r} trades in {row.mode.value} mode: it keeps a credential set")
    if known_notifiers is not None:
        check_notifiers(config, known_notifiers)
    if after["strategy_parameters"] != before["strategy_parameters"]:
        check_parameters(row.strategy_name, strategies_dir, config)
    changed = [key for key in SETTABLE if after[key] != before[key]]
    stamp = datetime.now(UTC)
    done = BotConfigChange(
        bot=name,
        by=by,
        at=stamp.isoformat(),
        old={key: before[key] for key in changed},
        new={key: after[key] for key in changed},
    )
    if move_open:
        request_bot_move(session, name, by=by)
    if not changed:
        return done
    row.config = after
    session.add(Event(kind=CHANGE_EVENT, bot_name=name, payload=done.to_dict(), created_at=stamp))
    session.flush()
    return done
