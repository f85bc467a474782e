"""The strategy API: what strategy files subclass, and the loader that turns a file into a
validated, content-hashed strategy class. Backtests and the live engine run the same class."""

from tradepipe.strategy.api import (
    INTERFACE_VERSION,
    Decision,
    DecisionContext,
    Enter,
    Exit,
    ExitTargetError,
    ModelRef,
    Strategy,
    StrategyParameterError,
    StrategyParameters,
)
from tradepipe.strategy.loader import (
    LoadedStrategy,
    StrategyLoadError,
    content_hash,
    load_strategy,
    load_strategy_source,
)

__all__ = [
    "INTERFACE_VERSION",
    "Decision",
    "DecisionContext",
    "Enter",
    "Exit",
    "ExitTargetError",
    "LoadedStrategy",
    "ModelRef",
    "Strategy",
    "StrategyLoadError",
    "StrategyParameterError",
    "StrategyParameters",
    "content_hash",
    "load_strategy",
    "load_strategy_source",
]
