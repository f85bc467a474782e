"""One bot inside the engine: its row, its strategy instance, its book, its lifecycle.

The strategy is called only through `decide` and `save_state`, which turn anything the
strategy raises (or returns that is not an `Enter` or `Exit`) into `StrategyFailure` with the file
and line: the engine then puts this bot, and only this bot, in the error state. The
strategy never sees the book itself, only the frozen positions a `DecisionContext` holds.
"""

from __future__ import annotations

import json
import math
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from live.engine.features import FeatureStream
from live.engine.guard import CallGuard, OverBudget
from live.engine.model_watcher import ModelSlot
from live.engine.status import BotRunState
from tradepipe.botconfig import BotConfig
from tradepipe.domain import Candle
from tradepipe.enums import BotMode, PositionStatus
from tradepipe.orders import PositionBook
from tradepipe.risk import BotRisk, CircuitBreaker
from tradepipe.strategy import DecisionContext, Enter, Exit, LoadedStrategy, Strategy

__all__ = ["RISK_KEY", "BotRow", "BotRuntime", "StrategyFailure"]

RISK_KEY = "risk"  # the saved book's key for the risk ledger (PositionBook ignores it)


class StrategyFailure(Exception):
    """The strategy raised or answered nonsense; the message names file and line."""


@dataclass(frozen=True, slots=True)
class BotRow:
    """A bot as the bots table describes it (the engine's only source of bot config)."""

    id: int
    name: str
    strategy: str
    symbol: str
    timeframe: str
    config: BotConfig
    enabled: bool
    mode: BotMode = BotMode.PAPER
    exchange: str = "binance"

    def model_ref(self, loaded: LoadedStrategy | None) -> tuple[str, str] | None:
        """The (model, alias) the bot consumes: its config's, else its strategy's."""
        if self.config.model_name:
            return self.config.model_name, self.config.model_alias
        declared = loaded.cls.model if loaded is not None else None
        return (declared.name, declared.alias) if declared is not None else None


class BotRuntime:
    def __init__(self, row: BotRow, loaded: LoadedStrategy, book: PositionBook) -> None:
        self.row = row
        self.loaded = loaded
        self.strategy: Strategy[Any] = _create(loaded, row.config.strategy_parameters)
        self.book = book
        # the kernel's risk ledger (saved with the book) and the venue's breaker (the
        # engine sets its limits from the settings)
        self.risk = BotRisk(row.name)
        self.breaker = CircuitBreaker(error_limit=5, cooldown_ms=60_000)
        self.state = BotRunState.STARTING
        self.last_error: str | None = None
        self.slot: ModelSlot | None = None
        # the model's challenger, run in shadow beside `slot` (live/engine/shadow.py)
        self.shadow_slot: ModelSlot | None = None
        self.features: FeatureStream | None = None
        self.decisions = 0
        self.entries = 0
        self.last_candle_ms: int | None = None
        self.saved_strategy_state: dict[str, Any] | None = None
        self.fell_back_from: str | None = None  # the deleted strategy it ran before
        # Decisions run under the engine's guard: one over budget is stopped and fails
        # this bot (live/engine/guard.py). None: unguarded (the engine always sets one).
        self.guard: CallGuard | None = None
        self.call_budget_seconds = math.inf
        self._config_json: tuple[BotRow, str] | None = None

    def config_json(self) -> str:
        """The bot's config as canonical JSON, computed once per bots-table row (the
        decision log keeps it with each decision: the review re-runs with it)."""
        cached = self._config_json
        if cached is None or cached[0] is not self.row:
            text = json.dumps(self.row.config.model_dump(mode="json"), sort_keys=True)
            cached = self._config_json = (self.row, text)
        return cached[1]

    @property
    def name(self) -> str:
        return self.row.name

    def saved_book(self) -> dict[str, Any]:
        """The book as the database keeps it, with the risk ledger beside its positions."""
        return {**self.book.to_dict(), RISK_KEY: self.risk.to_dict()}

    @property
    def symbol(self) -> str:
        return self.book.symbol

    @property
    def config(self) -> BotConfig:
        return self.row.config

    @property
    def strategy_hash(self) -> str:
        return self.loaded.content_hash

    @property
    def flat(self) -> bool:
        return not self.book.positions

    @property
    def needs_model(self) -> bool:
        return self.row.model_ref(self.loaded) is not None

    @property
    def deciding(self) -> bool:
        """Whether candles reach the strategy at all (entries may still be blocked)."""
        return self.state is BotRunState.RUNNING

    def working_orders(self) -> int:
        return sum(
            1
            for position in self.book.positions
            for order in (position.entry, *position.exits)
            if order.is_working
        )

    def pending_positions(self) -> int:
        return sum(1 for p in self.book.positions if p.status is PositionStatus.PENDING)

    # -- the strategy, guarded -------------------------------------------------------------

    def decide(
        self, candle: Candle, features: Mapping[str, float], probability: float | None
    ) -> Enter | Exit | None:
        context = DecisionContext(
            candle=candle,
            features=MappingProxyType(dict(features)),
            model_probability=probability,
            open_positions=self.book.positions,
            config=self.config,
        )
        self.decisions += 1
        try:
            if self.guard is None:
                decision = self.strategy.on_candle(context)
            else:
                decision = self.guard.call(
                    self.call_budget_seconds, lambda: self.strategy.on_candle(context)
                )
        except OverBudget as stopped:
            raise StrategyFailure(
                f"{self._where(stopped)}: on_candle ran past its budget of "
                f"{self.call_budget_seconds:g} s per call and was stopped"
            ) from None
        except Exception as error:
            raise StrategyFailure(self._describe(error, "on_candle")) from error
        if decision is not None and not isinstance(decision, Enter | Exit):
            raise StrategyFailure(
                f"{self.loaded.path}: on_candle returned {type(decision).__name__}, "
                "expected Enter, Exit or None"
            )
        return decision

    def save_state(self) -> dict[str, Any]:
        try:
            state = self.strategy.on_save()
        except Exception as error:
            raise StrategyFailure(self._describe(error, "on_save")) from error
        try:  # a copy in plain JSON: the database stores it, the strategy keeps its own
            copied = json.loads(json.dumps(state, allow_nan=False))
        except (TypeError, ValueError) as error:
            raise StrategyFailure(
                f"{self.loaded.path}: on_save must return a JSON object ({error})"
            ) from None
        if not isinstance(copied, dict):
            raise StrategyFailure(f"{self.loaded.path}: on_save must return a dict")
        return copied

    def load_state(self, state: Mapping[str, Any]) -> None:
        try:
            self.strategy.on_load(state)
        except Exception as error:
            raise StrategyFailure(self._describe(error, "on_load")) from error

    def replace_strategy(self, loaded: LoadedStrategy) -> None:
        """Run `loaded` from now on; a new version of the same strategy receives the old
        one's state (`on_save` -> `on_load`), another strategy starts fresh."""
        handover = self.save_state() if loaded.name == self.loaded.name else None
        strategy = _create(loaded, self.row.config.strategy_parameters)
        previous = self.strategy, self.loaded
        self.strategy, self.loaded = strategy, loaded
        if handover is not None:
            try:
                self.load_state(handover)
            except StrategyFailure:
                self.strategy, self.loaded = previous
                raise

    def _where(self, error: BaseException) -> str:
        """`file:line` of the deepest frame of the strategy file in the traceback."""
        path = str(self.loaded.path)
        lines = [f.lineno for f in traceback.extract_tb(error.__traceback__) if f.filename == path]
        return f"{path}:{lines[-1]}" if lines else path

    def _describe(self, error: BaseException, method: str) -> str:
        where = self._where(error)
        text = str(error).splitlines()[0] if str(error) else ""
        return f"{where}: {method} raised {type(error).__name__}: {text}".rstrip(": ")


def _create(loaded: LoadedStrategy, parameters: Mapping[str, Any]) -> Strategy[Any]:
    """An instance of the strategy with the bot's parameters (user code: guarded)."""
    if loaded.cls is _Inert:  # stands in for any strategy: takes no parameters
        parameters = {}
    try:
        return loaded.create(parameters)
    except Exception as error:
        raise StrategyFailure(
            f"{loaded.path}: cannot be created: {type(error).__name__}: {error}"
        ) from error


class _Inert(Strategy[Any]):
    """Stands in for a strategy that no longer loads, so the bot's saved positions are
    still managed (the bot is in error and decides nothing)."""

    def on_candle(self, context: DecisionContext) -> Enter | None:
        return None


def inert_strategy(name: str) -> LoadedStrategy:
    return LoadedStrategy(
        name=name, path=Path(f"<{name} does not load>"), cls=_Inert, content_hash=""
    )
