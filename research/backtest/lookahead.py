"""The look-ahead check: does anything in the past change when future candles are appended?

A feature, a model probability or a strategy decision at candle t may depend only on candles
up to t. The check computes everything once over the whole history, then again over
histories truncated at a set of cuts, and compares the shared past exactly (a value that
moves by a single bit is look-ahead). The cuts that catch the most are the candles just
after the strategy's own entries: a decision at candle t must still be made when the history
ends at t. The remaining cuts are spread evenly, for features and probabilities.

A strategy only sees a frozen per-candle context, so it can peek only by reaching around it
(into the backtester's frames, a global that another run filled, a file with the future in
it); the check catches the first two and says what changed where. A peek at data the
strategy fetches itself is the same in both runs and cannot be seen here: the live review,
which replays what the engine really saw, catches that.

`freqtrade lookahead-analysis` does the same after the fact, one backtest per signal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from research.backtest.engine import DEFAULT_FEES, run_backtest
from research.backtest.errors import BacktestError
from research.backtest.records import iso_utc
from tradepipe.botconfig import BotConfig
from tradepipe.features import FeatureSpec, compute_features, default_spec
from tradepipe.orders import FeeSchedule
from tradepipe.strategy import DecisionContext, Enter, Exit, LoadedStrategy
from tradepipe.timeframes import Timeframe, parse_timeframe

__all__ = ["ChangedDecision", "FeatureLookahead", "LookaheadReport", "check_lookahead"]

Predict = Callable[[pd.DataFrame], npt.ArrayLike]
DEFAULT_CUTS = 12
Decisions = dict[int, Enter | Exit | None]  # candle start_ms -> what the strategy answered


@dataclass(frozen=True)
class FeatureLookahead:
    """A feature whose past values changed once the history went on past `cut_time`."""

    feature: str
    cut_time: str
    first_changed_time: str
    rows_changed: int


@dataclass(frozen=True)
class ChangedDecision:
    """The strategy answered differently at `time` depending on how much future it had."""

    time: str
    cut_time: str
    with_whole_history: str
    with_history_ending_at_cut: str


@dataclass(frozen=True)
class LookaheadReport:
    strategy: str
    candles: int
    cuts: tuple[str, ...]
    decisions_checked: int
    features: tuple[FeatureLookahead, ...] = ()
    probabilities_changed: tuple[str, ...] = ()  # cut times at which they changed
    decisions: tuple[ChangedDecision, ...] = ()

    @property
    def passed(self) -> bool:
        return not (self.features or self.probabilities_changed or self.decisions)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["passed"] = self.passed
        return data

    def summary(self) -> str:
        head = f"look-ahead check of {self.strategy}: {len(self.cuts)} cuts over {self.candles}"
        head += f" candles, {self.decisions_checked} decisions compared"
        if self.passed:
            return f"{head}: passed, nothing in the past changed when the future was appended"
        lines = [f"{head}: FAILED"]
        lines += [
            f"  feature {item.feature} changed at {item.first_changed_time} "
            f"({item.rows_changed} rows) once candles after {item.cut_time} were appended"
            for item in self.features
        ]
        lines += [
            f"  model probabilities changed with the cut at {t}" for t in self.probabilities_changed
        ]
        lines += [
            f"  decision at {item.time} was {item.with_whole_history} with the whole history "
            f"but {item.with_history_ending_at_cut} with the history ending at {item.cut_time}"
            for item in self.decisions[:20]
        ]
        if len(self.decisions) > 20:
            lines.append(f"  ... and {len(self.decisions) - 20} more changed decisions")
        return "\n".join(lines)


def check_lookahead(
    candles: pd.DataFrame,
    strategy: LoadedStrategy,
    config: BotConfig,
    *,
    timeframe: str | Timeframe,
    symbol: str = "",
    parameters: dict[str, Any] | None = None,
    feature_spec: FeatureSpec | None = None,
    predict: Predict | None = None,
    fees: FeeSchedule = DEFAULT_FEES,
    cuts: int = DEFAULT_CUTS,
) -> LookaheadReport:
    """Run the check (see the module docstring); BacktestError for inputs it cannot use."""
    if strategy.cls.model is not None and predict is None:
        raise BacktestError(
            f"strategy {strategy.name} consumes model {strategy.cls.model.uri}: "
            "give a model to check it with"
        )
    if cuts < 1:
        raise BacktestError(f"cuts must be at least 1, got {cuts}")
    frame = candles.reset_index(drop=True)
    spec = feature_spec or default_spec()
    run = _Runner(frame, strategy, config, parse_timeframe(timeframe), symbol, parameters, fees)
    whole_features = compute_features(frame, spec)
    whole_probabilities = _probabilities(predict, whole_features)
    whole = run.decisions(whole_features, whole_probabilities)
    starts = frame["start_ms"].to_numpy(dtype=np.int64)
    features: list[FeatureLookahead] = []
    changed_probabilities: list[str] = []
    changed: list[ChangedDecision] = []
    checked = 0
    chosen = _cut_rows(starts, whole, len(frame), cuts)
    for cut in chosen:
        prefix = frame.iloc[:cut]
        cut_time = iso_utc(int(starts[cut - 1]))
        part_features = compute_features(prefix, spec)
        features += _changed_features(whole_features.iloc[:cut], part_features, starts, cut_time)
        part_probabilities = _probabilities(predict, part_features)
        if whole_probabilities is not None and not _same(
            whole_probabilities[:cut], part_probabilities
        ):
            changed_probabilities.append(cut_time)
        part = run.decisions(part_features, part_probabilities)
        past = {time: answer for time, answer in whole.items() if time <= starts[cut - 1]}
        checked += len(part)
        changed += _changed_decisions(past, part, cut_time)
    return LookaheadReport(
        strategy=strategy.name,
        candles=len(frame),
        cuts=tuple(iso_utc(int(starts[cut - 1])) for cut in chosen),
        decisions_checked=checked,
        features=tuple(_first_per_feature(features)),
        probabilities_changed=tuple(changed_probabilities),
        decisions=tuple(changed),
    )


class _Runner:
    """Backtests of one strategy that record every answer it gave (a fresh instance each)."""

    def __init__(
        self,
        candles: pd.DataFrame,
        strategy: LoadedStrategy,
        config: BotConfig,
        timeframe: Timeframe,
        symbol: str,
        parameters: dict[str, Any] | None,
        fees: FeeSchedule,
    ) -> None:
        self.candles = candles
        self.strategy = strategy
        self.config = config
        self.timeframe = timeframe
        self.symbol = symbol
        self.parameters = parameters or {}
        self.fees = fees

    def decisions(
        self, features: pd.DataFrame, probabilities: npt.NDArray[np.float64] | None
    ) -> Decisions:
        answers: Decisions = {}
        instance = self.strategy.create(self.parameters)
        on_candle = instance.on_candle

        def recording(context: DecisionContext) -> Enter | Exit | None:
            answer = on_candle(context)
            answers[context.candle.start_ms] = answer
            return answer

        # The backtester binds the instance's on_candle once, so this sees every call.
        instance.on_candle = recording  # type: ignore[method-assign]
        run_backtest(
            self.candles.iloc[: len(features)],
            instance,
            self.config,
            symbol=self.symbol,
            timeframe=self.timeframe,
            features=features,
            probabilities=probabilities,
            fees=self.fees,
            strategy_hash=self.strategy.content_hash,
        )
        return answers


def _cut_rows(starts: npt.NDArray[np.int64], whole: Decisions, rows: int, cuts: int) -> list[int]:
    """Up to `cuts` cuts: half just after the strategy's entries (the history then ends at
    the entry's candle), the rest spread evenly; never the whole history itself."""
    entries = [time for time, answer in whole.items() if answer is not None]
    entry_rows = np.searchsorted(starts, np.asarray(entries, dtype=np.int64)) + 1
    wanted: set[int] = set()
    if len(entry_rows):
        pick = np.linspace(0, len(entry_rows) - 1, num=min(len(entry_rows), max(1, cuts // 2)))
        wanted.update(int(entry_rows[round(i)]) for i in pick)
    spread = np.linspace(rows / (cuts + 1), rows * cuts / (cuts + 1), num=cuts)
    for row in spread.astype(int):
        if len(wanted) >= cuts:
            break
        wanted.add(int(row))
    return sorted(row for row in wanted if 1 <= row < rows)


def _probabilities(
    predict: Predict | None, features: pd.DataFrame
) -> npt.NDArray[np.float64] | None:
    if predict is None:
        return None
    values = np.asarray(predict(features), dtype=np.float64)
    if values.ndim == 2 and values.shape[1] == 2:
        values = values[:, 1]
    return values


def _same(left: npt.NDArray[np.float64], right: npt.NDArray[np.float64] | None) -> bool:
    return (
        right is not None
        and left.shape == right.shape
        and bool(np.array_equal(left, right, equal_nan=True))
    )


def _changed_features(
    whole: pd.DataFrame, part: pd.DataFrame, starts: npt.NDArray[np.int64], cut_time: str
) -> list[FeatureLookahead]:
    found = []
    for name in whole.columns:
        left = whole[name].to_numpy(dtype=np.float64)
        right = part[name].to_numpy(dtype=np.float64)
        differs = ~((left == right) | (np.isnan(left) & np.isnan(right)))
        if differs.any():
            first = int(np.flatnonzero(differs)[0])
            found.append(
                FeatureLookahead(
                    str(name), cut_time, iso_utc(int(starts[first])), int(differs.sum())
                )
            )
    return found


def _first_per_feature(found: list[FeatureLookahead]) -> list[FeatureLookahead]:
    first: dict[str, FeatureLookahead] = {}
    for item in found:
        first.setdefault(item.feature, item)
    return list(first.values())


def _changed_decisions(past: Decisions, part: Decisions, cut_time: str) -> list[ChangedDecision]:
    changed = []
    for time in sorted(set(past) | set(part)):
        with_whole, with_part = past.get(time), part.get(time)
        if with_whole != with_part:
            changed.append(
                ChangedDecision(
                    iso_utc(time), cut_time, _describe(with_whole), _describe(with_part)
                )
            )
    return changed


def _describe(answer: Enter | Exit | None) -> str:
    if answer is None:
        return "no entry"
    if isinstance(answer, Exit):
        which = "all" if answer.position_seq is None else f"position {answer.position_seq}"
        return f"Exit({which}{', ' + answer.reason if answer.reason else ''})"
    price = "market" if answer.limit_price is None else f"limit {answer.limit_price:g}"
    return f"Enter({price}{', ' + answer.reason if answer.reason else ''})"
