"""Calling the strategy at a candle's close: the one decision path both engines share.

The live engine builds a `DecisionContext` per closed candle; a backtest calls the
strategy for up to millions of candles, so this module makes that call cheap without
changing what the strategy can observe:

- `FeatureRow` is a read-only Mapping over the precomputed batch feature frame: a row
  index and a lazily filled cache of columns as Python lists (only the columns a strategy
  reads are ever converted), instead of a new dict of every feature per candle.
- `_CandleContext` is a `DecisionContext` whose `candle` is built only if the strategy
  reads it (most strategies read it only when they enter).
- `Decider` reuses one context and one feature row from candle to candle, but only while
  nobody else holds them: after each call it compares CPython reference counts, and if the
  strategy kept the context or its features (`self.last = context`), those objects are left
  frozen at their candle and fresh ones are used from then on. A strategy therefore sees
  exactly the immutable, per-candle snapshots the live engine gives it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from sys import getrefcount
from typing import Any

import pandas as pd

from research.backtest.errors import BacktestError
from research.backtest.history import History, strategy_label
from tradepipe.botconfig import BotConfig
from tradepipe.domain import Candle
from tradepipe.orders import EntryRequest, InvalidOrderError, Position
from tradepipe.strategy import DecisionContext, Enter, Exit, ExitTargetError, Strategy

__all__ = ["Decider", "FeatureRow"]


class _Columns(dict[str, list[float]]):
    """Feature columns as Python lists, converted on first use."""

    def __init__(self, frame: pd.DataFrame) -> None:
        super().__init__()
        self.frame = frame
        self.names = tuple(str(name) for name in frame.columns)
        self.known = frozenset(self.names)

    def __missing__(self, name: str) -> list[float]:
        if name not in self.known:
            raise KeyError(name)
        values: list[float] = self.frame[name].to_numpy(dtype="float64").tolist()
        self[name] = values
        return values


class FeatureRow(Mapping[str, float]):
    """The features of one candle, read from the batch frame without copying it."""

    __slots__ = ("_columns", "_row")

    def __init__(self, columns: _Columns, row: int) -> None:
        self._columns = columns
        self._row = row

    def __getitem__(self, name: str) -> float:
        return self._columns[name][self._row]

    def __contains__(self, name: object) -> bool:
        return name in self._columns.known

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns.names)

    def __len__(self) -> int:
        return len(self._columns.names)

    def __repr__(self) -> str:
        return f"FeatureRow({dict(self)!r})"


class _CandleContext(DecisionContext):
    """A DecisionContext that builds its candle on first access.

    The parent's `candle` field is shadowed by a property with a setter, so the dataclass
    machinery (`dataclasses.replace`, `repr`, `==`) still works on it."""

    __slots__ = ("_candle", "_history", "_row")
    _candle: Candle | None
    _history: History
    _row: int

    @property
    def candle(self) -> Candle:
        built: Candle | None = self._candle
        if built is None:
            built = self._history.candle(self._row)
            object.__setattr__(self, "_candle", built)
        return built

    @candle.setter
    def candle(self, value: Candle) -> None:
        object.__setattr__(self, "_candle", value)


# Slot descriptors: assigning through them skips the frozen dataclass's __setattr__ guard,
# which is what reusing an object nobody else holds needs (and only that).
_set_row = vars(_CandleContext)["_row"].__set__
_set_candle = vars(_CandleContext)["_candle"].__set__
_set_history = vars(_CandleContext)["_history"].__set__
_set_features_row = vars(FeatureRow)["_row"].__set__
_set_probability = vars(DecisionContext)["model_probability"].__set__
_set_positions = vars(DecisionContext)["open_positions"].__set__
_set_field = object.__setattr__


class Decider:
    """Calls `strategy.on_candle` for a row and turns its answer into an `EntryRequest`."""

    def __init__(
        self,
        strategy: Strategy[Any],
        history: History,
        config: BotConfig,
        *,
        strategy_hash: str = "",
        model_version: str | None = None,
    ) -> None:
        self.strategy = strategy
        self.history = history
        self.config = config
        self.strategy_hash = strategy_hash
        self.model_version = model_version
        self._on_candle = strategy.on_candle
        self._columns = _Columns(history.features)
        self._probabilities = history.probabilities
        self._context, self._features = self._fresh()
        self._context_refs = 0  # measured on the first call, when nobody else holds them
        self._features_refs = 0

    def _fresh(self) -> tuple[_CandleContext, FeatureRow]:
        features = FeatureRow(self._columns, 0)
        context = object.__new__(_CandleContext)
        _set_history(context, self.history)
        _set_row(context, 0)
        _set_candle(context, None)
        _set_field(context, "features", features)
        _set_field(context, "model_probability", None)
        _set_field(context, "open_positions", ())
        _set_field(context, "config", self.config)
        return context, features

    def decide(self, row: int, positions: tuple[Position, ...]) -> Enter | Exit | None:
        """The strategy's decision at the close of `row`; BacktestError if it fails."""
        context = self._context
        features = self._features
        _set_row(context, row)
        _set_candle(context, None)
        _set_features_row(features, row)
        _set_positions(context, positions)
        if self._probabilities is not None:
            _set_probability(context, self._probabilities[row])
        if not self._context_refs:
            self._context_refs = getrefcount(context)
            self._features_refs = getrefcount(features)
        try:
            decision = self._on_candle(context)
        except Exception as error:
            raise BacktestError(
                f"strategy {strategy_label(self.strategy)} failed at the candle starting "
                f"{self.history.time_of(row)} (row {row}): {type(error).__name__}: {error}"
            ) from error
        if (
            getrefcount(context) != self._context_refs
            or getrefcount(features) != self._features_refs
        ):
            self._context, self._features = self._fresh()
        if decision is None or isinstance(decision, Enter | Exit):
            return decision
        raise BacktestError(
            f"strategy {strategy_label(self.strategy)} returned {decision!r} at the candle "
            f"starting {self.history.time_of(row)}: on_candle must return Enter(...), "
            "Exit(...) or None"
        )

    def exit_targets(
        self, decision: Exit, row: int, positions: tuple[Position, ...]
    ) -> tuple[int, ...]:
        """The positions an `Exit` closes; BacktestError if it names one not open."""
        try:
            return decision.targets(positions)
        except ExitTargetError as error:
            raise BacktestError(
                f"strategy {strategy_label(self.strategy)} at the candle starting "
                f"{self.history.time_of(row)}: {error}"
            ) from None

    def request(self, decision: Enter, row: int) -> EntryRequest:
        """The entry order an `Enter` asks for, sized and bounded by the bot's config."""
        try:
            return EntryRequest.from_config(
                self.config,
                limit_price=decision.limit_price,
                trailing_stop_pct=decision.trailing_stop_pct,
                strategy_hash=self.strategy_hash,
                model_version=self.model_version,
                reason=decision.reason or None,
            )
        except InvalidOrderError as error:
            raise BacktestError(
                f"strategy {strategy_label(self.strategy)} asked for an invalid entry at the "
                f"candle starting {self.history.time_of(row)}: {error}"
            ) from None
