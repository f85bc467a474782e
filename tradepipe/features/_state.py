"""The incremental feature state: its layout, bookkeeping, copies and snapshots.

Split from `incremental.py` so that the hot `update` stays readable on its own. The state is
plain floats, ints and lists of floats, so a snapshot is a nested tuple: immutable, cheap to
take, and safe to share between the bots that read one (symbol, timeframe, spec) state.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import accumulate
from operator import mul
from typing import Any, Self

from tradepipe.features._shared import (
    NO_MISSING_ROW,
    ema_center_of_mass,
    history_length,
    smoothing,
    summed_windows,
    wilder_center_of_mass,
)
from tradepipe.features.spec import FeatureSpec

NEVER = 1 << 62  # a row no stream reaches: the next flip of a spec without windowed sums
_TRIM_EVERY = 512  # rows between trims of the histories (memory only, no numeric effect)

# Windowed sums, per family: (attribute, history it sums, squared?). Each attribute holds,
# per window w, a list of w + 1 floats: the suffix sums of the previous block from its offset
# w (0.0) down to offset 1, then the prefix sum of the current block. At row t, offset j =
# t % w of its block, the window is item w - 1 - j (= ~t % w) plus the prefix; the previous
# block's whole sum is never needed. Indexes are non-negative because CPython 3.11
# specialises list indexing for those only.
_FAMILIES = (
    ("_sma_blocks", "_close", False),
    ("_ret_blocks", "_ret", False),
    ("_ret_square_blocks", "_ret", True),
    ("_park_blocks", "_park", False),
    ("_volume_blocks", "_volume", False),
    ("_volume_square_blocks", "_volume", True),
    ("_net_blocks", "_net", False),
    ("_flow_volume_blocks", "_volume", False),
)
_HISTORIES = ("_lnc", "_close", "_ret", "_park", "_volume", "_net")

# Every attribute that changes with updates, in snapshot order.
_STATE = (
    "_rows",
    "_last_start",
    "_due",
    "_next_flip",
    "_next_trim",
    "_close_run",
    "_ret_run",
    "_park_run",
    "_volume_run",
    "_last_missing",
    *_HISTORIES,
    *(family for family, _, _ in _FAMILIES),
    "_emas",
    "_gains",
    "_losses",
)


@dataclass(frozen=True, slots=True)
class FeatureState:
    """A copy of an `IncrementalFeatures` state, tied to the spec hash it was taken under."""

    spec_hash: str
    values: tuple[Any, ...]


class StreamState:
    """Everything `IncrementalFeatures.update` reads and writes, and how to copy it."""

    __slots__ = (
        "_ema_params",
        "_family_windows",
        "_first_valid",
        "_flip_sums",
        "_flips",
        "_history",
        "_horizons",
        "_momentum",
        "_rsi_params",
        "_sma",
        "_sma_sums",
        "_taker",
        "_taker_sums",
        "_volatility",
        "_volatility_sums",
        "_volume_sums",
        "_volume_windows",
        "_warmup",
        "_windows",
        "_with_flow",
        "_with_shape",
        "feature_names",
        "spec",
        *_STATE,
    )
    # Set in reset() by name (see _HISTORIES and _FAMILIES), declared here for the type checker.
    _lnc: list[float]
    _close: list[float]
    _ret: list[float]
    _park: list[float]
    _volume: list[float]
    _net: list[float]
    _sma_blocks: list[list[float]]
    _ret_blocks: list[list[float]]
    _ret_square_blocks: list[list[float]]
    _park_blocks: list[list[float]]
    _volume_blocks: list[list[float]]
    _volume_square_blocks: list[list[float]]
    _net_blocks: list[list[float]]
    _flow_volume_blocks: list[list[float]]

    def __init__(self, spec: FeatureSpec) -> None:
        self.spec = spec
        self.feature_names = spec.feature_names
        self._first_valid = tuple(spec.warmup_by_feature[name] for name in spec.feature_names)
        self._history = history_length(spec)
        self._warmup = spec.warmup
        self._with_flow = spec.taker_net_flow
        self._with_shape = spec.candle_shape
        # Lags as negative indexes into a history whose last item is the current value.
        self._horizons = tuple(-1 - h for h in spec.return_horizons)
        self._momentum = tuple(-1 - n for n in spec.momentum_periods)
        # Windowed sums: (window, its block group) pairs; groups share block boundaries.
        self._windows = summed_windows(spec)
        group = {w: g for g, w in enumerate(self._windows)}
        self._sma = tuple((w, group[w]) for w in spec.sma_windows)
        self._volatility = tuple((w, group[w]) for w in spec.volatility_windows)
        self._volume_windows = tuple((w, group[w]) for w in spec.volume_windows)
        self._taker = tuple((w, group[w]) for w in spec.taker_flow_windows)
        self._family_windows = (
            self._sma,
            self._volatility,
            self._volatility,
            self._volatility,
            self._volume_windows,
            self._volume_windows,
            self._taker,
            self._taker,
        )
        flips: list[list[tuple[str, int, str, bool]]] = [[] for _ in self._windows]
        for (family, history, squared), windows in zip(
            _FAMILIES, self._family_windows, strict=True
        ):
            for k, (_, g) in enumerate(windows):
                flips[g].append((family, k, history, squared))
        self._flips = tuple(tuple(entries) for entries in flips)
        # (index into the state list, alpha, 1 - alpha, denominator) per EMA and RSI.
        self._ema_params = tuple(
            (k, *smoothing(ema_center_of_mass(s))) for k, s in enumerate(spec.ema_spans)
        )
        self._rsi_params = tuple(
            (k, *smoothing(wilder_center_of_mass(n))) for k, n in enumerate(spec.rsi_periods)
        )
        self.reset()

    def reset(self) -> None:
        """Forget every candle seen."""
        spec = self.spec
        self._rows = 0
        self._last_start: int | None = None
        # Blocks of window w start at the rows that are multiples of w (row 0 starts every
        # group's first block): the next such row per group and of any group, and the next
        # trim.
        self._due = [0] * len(self._windows)
        self._next_flip = 0 if self._windows else NEVER
        self._next_trim = _TRIM_EVERY
        self._close_run = self._ret_run = self._park_run = self._volume_run = 0
        self._last_missing = NO_MISSING_ROW
        for history in _HISTORIES:
            setattr(self, history, [0.0] * self._history)
        for (family, _, _), windows in zip(_FAMILIES, self._family_windows, strict=True):
            setattr(self, family, [[0.0] * (w + 1) for w, _ in windows])
        self._emas = [0.0] * len(spec.ema_spans)
        self._gains = [0.0] * len(spec.rsi_periods)
        self._losses = [0.0] * len(spec.rsi_periods)
        self._bind()

    def _bind(self) -> None:
        """Hand the hot path direct references to the lists it updates, per window.

        The lists are only ever changed in place (flips assign slices, trims delete a head),
        so these stay valid until reset() or restore() put new lists in place.
        """
        windows = [window for window, _ in self._sma]
        self._sma_sums = tuple(zip(windows, self._sma_blocks, strict=True))
        windows = [window for window, _ in self._volatility]
        self._volatility_sums = tuple(
            zip(windows, self._ret_blocks, self._ret_square_blocks, self._park_blocks, strict=True)
        )
        windows = [window for window, _ in self._volume_windows]
        self._volume_sums = tuple(
            zip(windows, self._volume_blocks, self._volume_square_blocks, strict=True)
        )
        windows = [window for window, _ in self._taker]
        self._taker_sums = tuple(
            zip(windows, self._net_blocks, self._flow_volume_blocks, strict=True)
        )
        self._flip_sums = tuple(
            (
                window,
                tuple(
                    (getattr(self, family)[k], getattr(self, history), squared)
                    for family, k, history, squared in entries
                ),
            )
            for window, entries in zip(self._windows, self._flips, strict=True)
        )

    @property
    def ready(self) -> bool:
        """True once the last update returned every feature (past the warm-up)."""
        return self._rows > self.spec.warmup

    @property
    def rows(self) -> int:
        """Candles seen so far."""
        return self._rows

    def as_dict(self, values: tuple[float, ...]) -> dict[str, float]:
        """Name the values an `update` returned."""
        return dict(zip(self.feature_names, values, strict=True))

    def snapshot(self) -> FeatureState:
        """An independent, immutable copy of the state."""
        return FeatureState(
            self.spec.content_hash,
            tuple(_frozen(getattr(self, name)) for name in _STATE),
        )

    def restore(self, state: FeatureState) -> None:
        """Continue from `state`, which must come from the same spec."""
        if state.spec_hash != self.spec.content_hash:
            raise ValueError(
                f"feature state was taken under spec {state.spec_hash[:12]}, this is "
                f"{self.spec.content_hash[:12]}: warm up a new state from candles instead"
            )
        for name, value in zip(_STATE, state.values, strict=True):
            setattr(self, name, _thawed(value))
        self._bind()

    def copy(self) -> Self:
        twin = type(self)(self.spec)
        twin.restore(self.snapshot())
        return twin

    def _housekeeping(self, row: int) -> None:
        """Before `row` is added: close the blocks that end there and trim when due."""
        if row == self._next_flip:
            due = self._due
            for group, (window, sums) in enumerate(self._flip_sums):
                if due[group] != row:
                    continue
                due[group] = row + window
                # Keep the closed block's suffix sums, summed right to left as batch does.
                for target, history, squared in sums:
                    values = history[-window:]
                    backwards: Iterator[float] = reversed(values)
                    if squared:
                        backwards = map(mul, backwards, reversed(values))
                    target[1:] = accumulate(backwards)  # item `window`: the block's sum...
                    target[window] = 0.0  # ... is where the next block's prefix starts
            self._next_flip = min(due, default=NEVER)
        if row == self._next_trim:
            keep = self._history
            for history in _HISTORIES:
                del getattr(self, history)[:-keep]
            self._next_trim = row + _TRIM_EVERY


def _frozen(value: object) -> object:
    if isinstance(value, list):
        return tuple(_frozen(item) for item in value)
    return value


def _thawed(value: object) -> object:
    if isinstance(value, tuple):
        return [_thawed(item) for item in value]
    return value
