"""The incremental feature state: its layout, bookkeeping, copies and snapshots.

Split from `incremental.py` so that the hot `update` stays readable on its own. The state is
plain floats, ints and lists of floats, so a snapshot is a nested tuple: immutable, cheap to
take, and safe to share between the bots that read one (symbol, timeframe, spec) state.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate
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

_TRIM_EVERY = 512  # updates between trims of the histories (memory only, no numeric effect)

# Windowed sums, per family: (attribute, history it sums, squared?). Each attribute holds,
# per window w, a list [suffix sums of the previous block (w values), 0.0, prefix sum].
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
    "_until_trim",
    "_slots",
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
        "_flips",
        "_history",
        "_horizons",
        "_momentum",
        "_rsi_params",
        "_sma",
        "_taker",
        "_volatility",
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
        self._ema_params = tuple(smoothing(ema_center_of_mass(s)) for s in spec.ema_spans)
        self._rsi_params = tuple(smoothing(wilder_center_of_mass(n)) for n in spec.rsi_periods)
        self.reset()

    def reset(self) -> None:
        """Forget every candle seen."""
        spec = self.spec
        self._rows = 0
        self._last_start: int | None = None
        self._until_trim = _TRIM_EVERY
        # Suffix index per block group: the first update starts a new block.
        self._slots = list(self._windows)
        self._close_run = self._ret_run = self._park_run = self._volume_run = 0
        self._last_missing = NO_MISSING_ROW
        for history in _HISTORIES:
            setattr(self, history, [0.0] * self._history)
        for (family, _, _), windows in zip(_FAMILIES, self._family_windows, strict=True):
            setattr(self, family, [[0.0] * (w + 2) for w, _ in windows])
        self._emas = [0.0] * len(spec.ema_spans)
        self._gains = [0.0] * len(spec.rsi_periods)
        self._losses = [0.0] * len(spec.rsi_periods)

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

    def copy(self) -> Self:
        twin = type(self)(self.spec)
        twin.restore(self.snapshot())
        return twin

    def _flip(self, group: int) -> None:
        """A block of the group's window length has closed: keep its suffix sums (summed
        right to left, as batch does) and start the next block's prefix sums at 0.0."""
        w = self._windows[group]
        for family, k, history, squared in self._flips[group]:
            window = getattr(self, history)[-w:]
            if squared:
                window = [x * x for x in window]
            sums = list(accumulate(reversed(window)))
            sums.reverse()
            sums += (0.0, 0.0)
            getattr(self, family)[k] = sums

    def _trim(self) -> None:
        keep = self._history
        for history in _HISTORIES:
            del getattr(self, history)[:-keep]
        self._until_trim = _TRIM_EVERY


def _frozen(value: object) -> object:
    if isinstance(value, list):
        return tuple(_frozen(item) for item in value)
    return value


def _thawed(value: object) -> object:
    if isinstance(value, tuple):
        return [_thawed(item) for item in value]
    return value
