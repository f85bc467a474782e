"""The contract between strategy files and the engines that run them.

A strategy is event-driven: `on_candle` is called once per closed candle with a read-only
`DecisionContext` and answers `Enter(...)`, `Exit(...)` or None. Take-profit, stop-loss,
the holding timeout and the optional trailing stop come from the bot's config (an `Enter`
may set its own trailing stop) and are executed by the order state machine, exactly as the
triple-barrier labels assume, so what a model learns is what the bot trades. A strategy
may also close what it holds: `Exit()` leaves at market (the next candle's open in a
backtest) every open position of the bot, `Exit(position_seq=n)` only position n (the
`seq` of one of `context.open_positions`); the position closes with exit reason
`strategy`, and a pending limit entry it names is cancelled. Strategies that never return
`Exit` are unaffected, so the interface version stays 1.

Everything the strategy receives is immutable (frozen candle, frozen positions, a read-only
feature mapping): it can never change the engine's state. Its own state, if any, survives a
hot reload through `on_save` / `on_load`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Self, TypeVar, cast

from pydantic import BaseModel, ConfigDict, ValidationError

from tradepipe.botconfig import BotConfig
from tradepipe.domain import Candle
from tradepipe.enums import PositionStatus
from tradepipe.orders.types import Position
from tradepipe.pydantic_errors import describe_validation_error

if TYPE_CHECKING:  # annotations only: importing the strategy API stays free of pandas
    import numpy as np
    import numpy.typing as npt
    import pandas as pd

# Bump when the contract changes in a way old strategy files cannot follow.
INTERFACE_VERSION = 1


class StrategyParameters(BaseModel):
    """Base of a strategy's parameter model: frozen, unknown keys refused, every field
    with a default (a strategy must run without any configuration)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class StrategyParameterError(ValueError):
    """Parameters that do not validate against a strategy's model; names each field."""


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A registered MLflow model a strategy consumes, by name and alias."""

    name: str
    alias: str = "champion"

    @property
    def uri(self) -> str:
        return f"models:/{self.name}@{self.alias}"


@dataclass(frozen=True, slots=True)
class Enter:
    """Open a position: a market order at the next candle's open, or a limit order at
    `limit_price` that waits up to the bot's maker-order timeout."""

    limit_price: float | None = None
    reason: str = ""
    # this position's trailing stop %, instead of the bot's `trailing_stop_pct`
    trailing_stop_pct: float | None = None


class ExitTargetError(ValueError):
    """An `Exit` naming a position the bot does not hold open."""


@dataclass(frozen=True, slots=True)
class Exit:
    """Close open positions at market, as exit reason `strategy`: position `position_seq`
    (a `Position.seq` from the context), or every open position of the bot when None. An
    active position leaves at the next market price (a backtest: the next candle's open);
    a pending limit entry is cancelled."""

    position_seq: int | None = None
    reason: str = ""

    def targets(self, positions: tuple[Position, ...]) -> tuple[int, ...]:
        """The sequence numbers this exit closes among `positions` (the context's)."""
        if self.position_seq is None:
            return tuple(position.seq for position in positions)
        if all(position.seq != self.position_seq for position in positions):
            held = ", ".join(str(position.seq) for position in positions) or "none"
            raise ExitTargetError(
                f"Exit(position_seq={self.position_seq}) names no open position (open: {held})"
            )
        return (self.position_seq,)


Decision = Enter | Exit | None


@dataclass(frozen=True, slots=True)
class DecisionContext:
    """What a strategy sees at a candle's close; all of it read-only."""

    candle: Candle
    features: Mapping[str, float]
    model_probability: float | None
    open_positions: tuple[Position, ...]
    config: BotConfig

    @property
    def can_enter(self) -> bool:
        """False when the bot already holds its maximum of open (and pending) positions."""
        return len(self.open_positions) < self.config.max_open_positions

    @property
    def active_positions(self) -> tuple[Position, ...]:
        """The open positions whose entry has filled (those an `Exit` sells)."""
        return tuple(p for p in self.open_positions if p.status is PositionStatus.ACTIVE)


ParametersT = TypeVar("ParametersT", bound=StrategyParameters)


class Strategy(Generic[ParametersT]):
    """Subclass this in a file under `strategies/` and implement `on_candle`; name the
    parameter model twice, as type argument and class attribute, so both type checkers and
    the loader know it: `class Dip(Strategy[DipParameters]): Parameters = DipParameters`.

    Class attributes a subclass may set:
    - `Parameters`: its `StrategyParameters` subclass (validated before the strategy exists);
    - `required_features`: names of the features it reads (checked against the feature spec);
    - `model`: the `ModelRef` it consumes, if any (a bot's config may name another).
    """

    INTERFACE_VERSION: ClassVar[int] = INTERFACE_VERSION
    Parameters: ClassVar[type[StrategyParameters]] = StrategyParameters
    required_features: ClassVar[tuple[str, ...]] = ()
    model: ClassVar[ModelRef | None] = None

    def __init__(self, parameters: ParametersT) -> None:
        self.parameters = parameters

    @classmethod
    def create(cls, parameters: Mapping[str, Any] | StrategyParameters | None = None) -> Self:
        """Validate `parameters` against `Parameters`, then build the strategy."""
        if isinstance(parameters, cls.Parameters):
            return cls(cast(ParametersT, parameters))
        try:
            validated = cls.Parameters.model_validate(dict(parameters or {}))
        except ValidationError as error:
            problems = describe_validation_error(error, "parameters")
            raise StrategyParameterError(
                f"invalid parameters for {cls.__name__}: {problems}"
            ) from None
        return cls(cast(ParametersT, validated))

    def on_candle(self, context: DecisionContext) -> Enter | Exit | None:
        """Decide at a closed candle: `Enter(...)` to open a position, `Exit(...)` to close
        open ones, None to wait."""
        raise NotImplementedError

    def decision_rows(
        self,
        features: pd.DataFrame,
        probabilities: npt.NDArray[np.float64] | None,
        config: BotConfig,
    ) -> npt.NDArray[np.bool_] | None:
        """Optional, for backtests only: the rows of a history on which `on_candle` may
        return a decision. `features` is the batch feature frame (one row per candle),
        `probabilities` the model's per candle (NaN where none) or None without a model,
        `config` the bot's (the `context.config` of every call).
        The answer is a boolean per row that must be True wherever `on_candle` could
        return `Enter` or `Exit`, whatever the open positions; on a False row `on_candle`
        must return None and change nothing of the strategy's own state. A backtest then
        calls `on_candle` only on the True rows, which gives the decisions of calling it
        on every candle (as the live engine does). None, the default: every row."""
        return None

    def on_save(self) -> dict[str, Any]:
        """State to hand to the next version of this strategy on a hot reload (JSON-able)."""
        return {}

    def on_load(self, state: Mapping[str, Any]) -> None:
        """Receive the state the previous version saved; ignore what is not understood."""
        return None
