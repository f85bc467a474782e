"""The preflight of a strategy, before it may run: loaded in isolation, smoke-run within a budget.

Loading a file (`tradepipe.strategy.loader`) already checks that it defines exactly one
strategy class of the current interface version whose default parameters validate. What a
loader cannot check without running the file's code is whether that code behaves: a module
that loops forever at import, an `on_candle` that raises on ordinary candles, an endless
loop in a decision, an `on_save` whose state is not JSON, parameters in a bot's config that
the strategy refuses. So before a version may replace a running one, it is executed in a
separate worker process (a file that hangs or crashes takes only that process with it) and
driven over a few hundred synthetic candles with the features the engine computes, once
per parameter set (the defaults and each bot's `strategy_parameters`), within a time
budget (the worker mechanism is `tradepipe.worker_process`, shared with the engine's model
check). Inside the worker an interval timer interrupts a run that is over budget, so the
error names the line the code was stuck on; a worker that does not answer even then (a loop
inside C code) is killed and replaced.

The engine, `tradepipe strategies sync|validate` and the strategy_sync DAG all validate
through `check_strategy_source` (via the registry sync's default loader), so a strategy is
valid or invalid for the same reasons whoever looked last.
"""

from __future__ import annotations

import atexit
import json
import math
import signal
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from tradepipe.botconfig import BotConfig
from tradepipe.strategy.api import DecisionContext, Enter, Exit, StrategyParameterError
from tradepipe.strategy.loader import (
    LoadedStrategy,
    StrategyLoadError,
    content_hash,
    load_strategy_source,
)
from tradepipe.worker_process import (
    WorkerDiedError,
    WorkerProcess,
    WorkerStartError,
    WorkerTimeoutError,
    serve,
)

__all__ = [
    "DEFAULT_BUDGET_SECONDS",
    "SMOKE_CANDLES",
    "StrategyCheck",
    "StrategyValidator",
    "check_strategy_source",
    "checked_loader",
    "shared_validator",
]

DEFAULT_BUDGET_SECONDS = 2.0
SMOKE_CANDLES = 300
# A worker that does not answer this long after its budget ran out is stuck outside Python
# bytecode (the interval timer could not interrupt it): it is killed.
KILL_GRACE_SECONDS = 2.0
# The context the smoke run decides with when no bot config is given.
SMOKE_CONFIG = BotConfig(
    capital_per_trade=100.0,
    take_profit_pct=1.0,
    stop_loss_pct=1.0,
    max_holding_seconds=3600.0,
    maker_order_timeout_seconds=60.0,
)


@dataclass(frozen=True, slots=True)
class StrategyCheck:
    """A version that passed: what ran and how long it took (in the worker)."""

    name: str
    class_name: str
    content_hash: str
    decisions: int
    entries: int
    seconds: float


# -- the parent side -------------------------------------------------------------------------


class StrategyValidator:
    """One worker process (`tradepipe.worker_process`), started on first use and reused;
    calls are serialised and may come from any thread. `close()` stops the worker."""

    def __init__(self) -> None:
        self._worker = WorkerProcess(
            "tradepipe.strategy.preflight", description="the validation process"
        )

    def check(
        self,
        source: bytes,
        path: Path,
        *,
        configs: Mapping[str, BotConfig] | None = None,
        budget_seconds: float | None = None,
    ) -> StrategyCheck:
        """Validate `source` as the file `path`; raise StrategyLoadError (file:line: message).

        `configs`: bot name -> config; each bot's `strategy_parameters` must validate and
        drive the smoke run too (the error names the bot).
        """
        budget = DEFAULT_BUDGET_SECONDS if budget_seconds is None else budget_seconds
        if not (math.isfinite(budget) and budget > 0):
            raise ValueError(f"strategy validation budget must be > 0 seconds: {budget!r}")
        request = (
            source,
            str(path),
            {name: config.model_dump(mode="json") for name, config in (configs or {}).items()},
            budget,
        )
        try:
            answer = self._worker.call(request, budget + KILL_GRACE_SECONDS)
        except WorkerTimeoutError:
            raise StrategyLoadError(
                path,
                f"smoke run did not finish within its budget of {budget:g} s and did "
                "not stop when interrupted: the validation process was killed",
            ) from None
        except WorkerDiedError as error:
            raise StrategyLoadError(
                path, f"the validation process died while running this file ({error})"
            ) from None
        except WorkerStartError as error:
            raise RuntimeError(str(error)) from None
        if answer[0] == "error":
            _, message, line = answer
            raise StrategyLoadError(path, message, line)
        _, class_name, decisions, entries, seconds = answer
        return StrategyCheck(
            name=path.stem,
            class_name=class_name,
            content_hash=content_hash(source),
            decisions=decisions,
            entries=entries,
            seconds=seconds,
        )

    def warm(self) -> None:
        """Start the worker now (an interpreter start: seconds), not at the first check."""
        self._worker.start()

    def close(self) -> None:
        self._worker.close()


_shared: StrategyValidator | None = None
_shared_lock = threading.Lock()


def shared_validator() -> StrategyValidator:
    """The process-wide validator (one worker per process, stopped at exit)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = StrategyValidator()
            atexit.register(_shared.close)
        return _shared


def check_strategy_source(
    source: bytes,
    path: Path,
    *,
    configs: Mapping[str, BotConfig] | None = None,
    budget_seconds: float | None = None,
) -> StrategyCheck:
    """Validate `source` (the bytes of the file `path`) in the shared validation process."""
    return shared_validator().check(source, path, configs=configs, budget_seconds=budget_seconds)


def checked_loader(
    configs_for: Callable[[str], Mapping[str, BotConfig]] | None = None,
    budget_seconds: float | None = None,
) -> Callable[[bytes, Path], LoadedStrategy]:
    """A `load(source, path)` for the registry sync that validates before loading here.

    `configs_for(strategy_name)` gives the configs of the bots that use the strategy.
    """

    def load(source: bytes, path: Path) -> LoadedStrategy:
        configs = configs_for(path.stem) if configs_for is not None else None
        check_strategy_source(source, path, configs=configs, budget_seconds=budget_seconds)
        return load_strategy_source(source, path)

    return load


# -- the worker side -------------------------------------------------------------------------


class _OverBudget(BaseException):
    """Raised inside the worker by the interval timer. A BaseException, so that a strategy's
    own `except Exception` cannot swallow it."""


def _answer(market: _SmokeMarket, request: tuple[Any, ...]) -> tuple[Any, ...]:
    try:
        return _check(market, *request)
    except _OverBudget:  # the timer fired just as the run ended
        return ("error", "the smoke run ended exactly at its budget", None)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise _OverBudget


@dataclass(frozen=True, slots=True)
class _SmokeMarket:
    candles: tuple[Any, ...]  # tradepipe.domain.Candle
    features: tuple[dict[str, float], ...]
    probabilities: tuple[float, ...]


def _smoke_market() -> _SmokeMarket:
    """Synthetic 1-minute candles (a seeded random walk with volatility bursts) and their
    default features, past the features' warm-up, with model probabilities across [0, 1]."""
    import numpy as np
    import pandas as pd

    from tradepipe.domain import Candle
    from tradepipe.features import compute_features, default_spec
    from tradepipe.timeframes import parse_timeframe

    spec = default_spec()
    warmup = 60
    count = SMOKE_CANDLES + warmup
    rng = np.random.default_rng(20240101)
    volatility = 0.001 * (1 + 3 * (rng.random(count) < 0.05))
    closes = 30_000.0 * np.exp(np.cumsum(rng.normal(0, volatility)))
    opens = np.concatenate([[closes[0]], closes[:-1]])
    spread = np.abs(rng.normal(0, 0.0005, count)) * closes
    volumes = rng.gamma(2.0, 5.0, count)
    frame = pd.DataFrame(
        {
            "start_ms": 1_704_067_200_000 + 60_000 * np.arange(count),
            "open": opens,
            "high": np.maximum(opens, closes) + spread,
            "low": np.minimum(opens, closes) - spread,
            "close": closes,
            "volume": volumes,
            "taker_buy_volume": volumes * rng.uniform(0.2, 0.8, count),
        }
    )
    features = compute_features(frame, spec)
    timeframe = parse_timeframe("1m")
    candles, rows = [], []
    for index in range(warmup, count):
        row = frame.iloc[index]
        candles.append(
            Candle(
                symbol="SMOKEUSDT",
                timeframe=timeframe,
                start_ms=int(row["start_ms"]),
                open=float(row["open"]),
                high=float(row["high"]),
                low=float(row["low"]),
                close=float(row["close"]),
                volume=float(row["volume"]),
                taker_buy_volume=float(row["taker_buy_volume"]),
                trade_count=10,
            )
        )
        rows.append({name: float(features[name].iloc[index]) for name in spec.feature_names})
    probabilities = tuple(float(p) for p in rng.random(len(candles)))
    return _SmokeMarket(tuple(candles), tuple(rows), probabilities)


def _check(
    market: _SmokeMarket,
    source: bytes,
    path_text: str,
    configs: dict[str, dict[str, Any]],
    budget: float,
) -> tuple[Any, ...]:
    path = Path(path_text)
    started = time.perf_counter()
    method = "loading the file"
    signal.setitimer(signal.ITIMER_REAL, budget)
    try:
        loaded = load_strategy_source(source, path)
        runs: list[tuple[str | None, BotConfig]] = [(None, SMOKE_CONFIG)]
        runs += [(bots, BotConfig.model_validate(data)) for bots, data in _distinct(configs)]
        decisions = entries = 0
        for bot, config in runs:
            try:
                strategy = loaded.create(config.strategy_parameters if bot else None)
            except StrategyParameterError as error:
                return ("error", f"bot {bot}: {error}", None)
            missing = {n: 0.0 for n in loaded.cls.required_features}
            for candle, features, probability in zip(
                market.candles, market.features, market.probabilities, strict=True
            ):
                method = "on_candle"
                context = DecisionContext(
                    candle=candle,
                    features={**missing, **features},
                    model_probability=probability,
                    open_positions=(),
                    config=config,
                )
                decision = strategy.on_candle(context)
                decisions += 1
                if isinstance(decision, Enter):
                    entries += 1
                elif decision is not None and not isinstance(decision, Exit):
                    return (
                        "error",
                        f"on_candle returned {type(decision).__name__}, expected Enter, Exit "
                        "or None (in the smoke run over synthetic candles)",
                        None,
                    )
            method = "on_save"
            state = strategy.on_save()
            try:
                handed_over = json.loads(json.dumps(state, allow_nan=False))
            except (TypeError, ValueError) as error:
                return ("error", f"on_save must return a JSON object ({error})", None)
            if not isinstance(handed_over, dict):
                return ("error", "on_save must return a dict", None)
            method = "on_load"
            loaded.create(config.strategy_parameters if bot else None).on_load(handed_over)
    except StrategyLoadError as error:
        return ("error", error.message, error.line)
    except _OverBudget as error:
        return (
            "error",
            f"{method} did not finish within the smoke run's budget of {budget:g} s "
            "(an endless loop?)",
            _line_in(error, path),
        )
    except Exception as error:
        text = str(error).splitlines()[0] if str(error) else ""
        message = f"{method} raised {type(error).__name__}: {text}".rstrip(": ")
        return (
            "error",
            f"{message} (in the smoke run over synthetic candles)",
            _line_in(error, path),
        )
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return ("ok", loaded.class_name, decisions, entries, time.perf_counter() - started)


def _distinct(configs: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """The bots' configs, each distinct one once, with the names of the bots that share it
    ("'a'" or "'a' (and 2 more with the same config)"): the smoke run is deterministic in
    its config, so fifty bots on one config need one run, not fifty (a reload's cost)."""
    shared: dict[str, tuple[dict[str, Any], list[str]]] = {}
    for name, data in configs.items():
        shared.setdefault(json.dumps(data, sort_keys=True), (data, []))[1].append(name)
    named = []
    for data, bots in shared.values():
        label = repr(bots[0])
        if len(bots) > 1:
            label += f" (and {len(bots) - 1} more with the same config)"
        named.append((label, data))
    return named


def _line_in(error: BaseException, path: Path) -> int | None:
    lines = [f.lineno for f in traceback.extract_tb(error.__traceback__) if f.filename == str(path)]
    return lines[-1] if lines else None


def _main() -> None:
    """The worker (`tradepipe.worker_process.serve`): the smoke market is built once."""
    signal.signal(signal.SIGALRM, _interrupt)
    market = _smoke_market()
    serve(lambda request: _answer(market, request))


if __name__ == "__main__":
    _main()
