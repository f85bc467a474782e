"""Incremental features: one closed candle at a time, for the live engine.

O(1) amortised per candle: block prefix/suffix sums over short histories (plain lists,
trimmed now and then), recursive EMAs, run-length counters; no pandas and no per-update
arrays. `update` checks the candle and hands each family of features to a step that appends
them in `feature_names` order; the steps read their per-window lists through direct
references (`StreamState._bind`), the cheapest access CPython has besides locals. Every
operation mirrors `batch.py` in order and operands (see `_shared`), so on the same rows the
two agree bit for bit; the parity tests on real data hold them to 1e-9.

The live engine shares one state per (symbol, timeframe, spec) across bots: `update` returns
an immutable tuple that bots may keep, and `snapshot()`/`restore()` (or `copy.deepcopy`)
copy the state.
"""

from __future__ import annotations

import math
from math import log, sqrt

from tradepipe.domain import Candle
from tradepipe.features._shared import PARKINSON_SCALE, RSI_NO_MOVEMENT, CandleDataError
from tradepipe.features._state import FeatureState, StreamState

__all__ = ["FeatureState", "IncrementalFeatures"]

_NAN = math.nan
_INF = math.inf


class IncrementalFeatures(StreamState):
    """Features of a candle stream, updated one closed candle at a time.

    `IncrementalFeatures(spec)`; `update(candle)` returns a tuple aligned with
    `feature_names` (`as_dict` names it); `ready`, `rows`, `reset()`, `snapshot()`,
    `restore(state)` and `copy()` come from `StreamState`.
    """

    __slots__ = ()

    def update(self, candle: Candle) -> tuple[float, ...]:
        """Add the next closed candle; return its features in `feature_names` order.

        NaN marks a feature still warming up, and taker flows of a candle without taker
        volume. Raises CandleDataError on a candle that is not after the previous one or
        whose prices are not positive.
        """
        o = candle.open
        h = candle.high
        lo = candle.low
        c = candle.close
        v = candle.volume
        if not (0.0 < lo <= h < _INF and 0.0 < o < _INF and 0.0 < c < _INF and 0.0 <= v < _INF):
            raise CandleDataError(f"candle prices must be positive and finite: {candle}")
        start = candle.start_ms
        last_start = self._last_start
        if last_start is not None and start <= last_start:
            raise CandleDataError(
                f"candle at {start} ms is not after the previous one ({last_start} ms): "
                "features take each closed candle once, in time order"
            )
        self._last_start = start
        t = self._rows
        self._rows = t + 1
        # Block bookkeeping comes first: a flip sums the block that the previous row closed.
        if t == self._next_flip or t == self._next_trim:
            self._housekeeping(t)

        out: list[float] = []
        r, ret_run, previous_close = self._closes(out, t, c)
        log_range = self._volatility_features(out, t, r, ret_run, log(h / lo))
        self._rsi_and_momentum(out, t, c, previous_close)
        self._volume_and_flow(out, t, v, candle.taker_buy_volume)
        if self._with_shape:
            _shape(out, o, h, lo, c, log_range)
        if t < self._warmup:
            for position, first in enumerate(self._first_valid):
                if t < first:
                    out[position] = _NAN
        return tuple(out)

    def _closes(self, out: list[float], t: int, c: float) -> tuple[float, int, float]:
        """Returns, SMA and EMA ratios; gives the log return, its run and the last close."""
        lnc_history = self._lnc
        close_history = self._close
        ret_history = self._ret
        lnc = log(c)
        if t:
            previous_close = close_history[-1]
            r = lnc - lnc_history[-1]
            close_run = self._close_run + 1 if c == previous_close else 1
            ret_run = self._ret_run + 1 if r == ret_history[-1] else 1
        else:
            previous_close = c
            r = 0.0
            close_run = ret_run = 1
        self._close_run = close_run
        self._ret_run = ret_run
        lnc_history.append(lnc)
        close_history.append(c)
        ret_history.append(r)

        for back in self._horizons:
            out.append(lnc - lnc_history[back])
        for w, acc in self._sma_sums:
            prefix = acc[w] + c
            acc[w] = prefix
            s = acc[~t % w] + prefix
            out.append(c / (c if close_run >= w else s / w))
        emas = self._emas
        for k, alpha, keep, den in self._ema_params:
            ema = c if t == 0 else emas[k]
            if ema != c:
                ema = (keep * ema + alpha * c) / den
            emas[k] = ema
            out.append(c / ema)
        return r, ret_run, previous_close

    def _volatility_features(
        self, out: list[float], t: int, r: float, ret_run: int, log_range: float
    ) -> float:
        """Std of log returns, then Parkinson volatility; gives the log range back."""
        park = log_range * log_range
        park_history = self._park
        park_run = self._park_run + 1 if t and park == park_history[-1] else 1
        self._park_run = park_run
        park_history.append(park)
        r2 = r * r
        for w, sums, squares, _ in self._volatility_sums:
            slot = ~t % w
            prefix = sums[w] + r
            sums[w] = prefix
            s1 = sums[slot] + prefix
            prefix = squares[w] + r2
            squares[w] = prefix
            s2 = squares[slot] + prefix
            var = (s2 - s1 * s1 / w) / (w - 1)
            out.append(0.0 if ret_run >= w or var < 0.0 else sqrt(var))
        for w, _, _, sums in self._volatility_sums:
            prefix = sums[w] + park
            sums[w] = prefix
            s = sums[~t % w] + prefix
            mean = park if park_run >= w else s / w
            out.append(sqrt(mean * PARKINSON_SCALE) if mean > 0.0 else 0.0)
        return log_range

    def _rsi_and_momentum(self, out: list[float], t: int, c: float, previous_close: float) -> None:
        if t:
            change = c - previous_close
            gain = change if change > 0.0 else 0.0
            loss = -change if change < 0.0 else 0.0
            gains = self._gains
            losses = self._losses
            for k, alpha, keep, den in self._rsi_params:
                if t == 1:
                    up = gain
                    down = loss
                else:
                    up = gains[k]
                    down = losses[k]
                    if up != gain:
                        up = (keep * up + alpha * gain) / den
                    if down != loss:
                        down = (keep * down + alpha * loss) / den
                gains[k] = up
                losses[k] = down
                moving = up + down
                out.append(100.0 * up / moving if moving > 0.0 else RSI_NO_MOVEMENT)
        else:
            for _ in self._rsi_params:
                out.append(_NAN)
        close_history = self._close
        for back in self._momentum:
            then = close_history[back]
            # 0.0 is the warm-up filler (prices are positive): that row's value is masked.
            out.append(c / then - 1.0 if then else _NAN)

    def _volume_and_flow(self, out: list[float], t: int, v: float, taker_buy: float | None) -> None:
        """Volume ratio and z-score, then the taker flows."""
        volume_history = self._volume
        volume_run = self._volume_run + 1 if t and v == volume_history[-1] else 1
        self._volume_run = volume_run
        volume_history.append(v)
        v2 = v * v
        for w, sums, squares in self._volume_sums:
            slot = ~t % w
            prefix = sums[w] + v
            sums[w] = prefix
            s1 = sums[slot] + prefix
            prefix = squares[w] + v2
            squares[w] = prefix
            s2 = squares[slot] + prefix
            if volume_run >= w:
                out.append(1.0)
                out.append(0.0)
                continue
            mean = s1 / w
            out.append(v / mean if mean > 0.0 else 1.0)
            var = (s2 - s1 * s1 / w) / (w - 1)
            std = sqrt(var) if var > 0.0 else 0.0
            out.append((v - mean) / std if std > 0.0 else 0.0)

        if taker_buy is None or taker_buy != taker_buy:
            net = 0.0
            self._last_missing = last_missing = t
            flow = _NAN
        else:
            net = 2.0 * taker_buy - v
            last_missing = self._last_missing
            flow = net / v if v > 0.0 else 0.0
        if self._with_flow:
            out.append(flow)
        self._net.append(net)
        for w, nets, volumes in self._taker_sums:
            slot = ~t % w
            prefix = nets[w] + net
            nets[w] = prefix
            s_net = nets[slot] + prefix
            prefix = volumes[w] + v
            volumes[w] = prefix
            s_volume = volumes[slot] + prefix
            if t - last_missing < w:
                out.append(_NAN)
            else:
                out.append(s_net / s_volume if s_volume > 0.0 else 0.0)


def _shape(out: list[float], o: float, h: float, lo: float, c: float, log_range: float) -> None:
    candle_range = h - lo
    if candle_range > 0.0:
        out.append((c - o) / candle_range)
        out.append((h - (o if o > c else c)) / candle_range)
        out.append(((c if o > c else o) - lo) / candle_range)
        out.append((c - lo) / candle_range)
    else:
        out.append(0.0)
        out.append(0.0)
        out.append(0.0)
        out.append(0.5)
    out.append(log_range)
