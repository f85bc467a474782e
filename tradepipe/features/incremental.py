"""Incremental features: one closed candle at a time, for the live engine.

O(1) amortised per candle: block prefix/suffix sums over short histories (plain lists,
trimmed now and then), recursive EMAs, run-length counters; no pandas and no per-update
arrays. Every operation mirrors `batch.py` in order and operands (see `_shared`), so on the
same rows the two agree bit for bit; the parity tests on real data hold them to 1e-9.

The live engine shares one state per (symbol, timeframe, spec) across bots: `update` returns
an immutable tuple that bots may keep, and `snapshot()`/`restore()` (or `copy.deepcopy`)
copy the state.
"""

from __future__ import annotations

import math

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
        slots = self._slots
        for g, w in enumerate(self._windows):
            slot = slots[g] + 1
            if slot > w:
                self._flip(g)
                slot = 1
            slots[g] = slot
        self._until_trim -= 1
        if not self._until_trim:
            self._trim()

        out: list[float] = []
        put = out.append
        log = math.log
        sqrt = math.sqrt

        lnc_history = self._lnc
        close_history = self._close
        ret_history = self._ret
        lnc = log(c)
        if t:
            previous_close = close_history[-1]
            r = lnc - lnc_history[-1]
        else:
            previous_close = c
            r = 0.0
        if c == previous_close and t:
            self._close_run = close_run = self._close_run + 1
        else:
            self._close_run = close_run = 1
        if t and r == ret_history[-1]:
            self._ret_run = ret_run = self._ret_run + 1
        else:
            self._ret_run = ret_run = 1
        lnc_history.append(lnc)
        close_history.append(c)
        ret_history.append(r)

        for back in self._horizons:
            put(lnc - lnc_history[back])

        blocks = self._sma_blocks
        for k, (w, g) in enumerate(self._sma):
            acc = blocks[k]
            prefix = acc[-1] + c
            acc[-1] = prefix
            s = acc[slots[g]] + prefix
            put(c / (c if close_run >= w else s / w))

        emas = self._emas
        for k, (alpha, keep, den) in enumerate(self._ema_params):
            ema = c if t == 0 else emas[k]
            if ema != c:
                ema = (keep * ema + alpha * c) / den
            emas[k] = ema
            put(c / ema)

        log_range = log(h / lo)
        park = log_range * log_range
        park_history = self._park
        if t and park == park_history[-1]:
            self._park_run = park_run = self._park_run + 1
        else:
            self._park_run = park_run = 1
        park_history.append(park)
        blocks = self._ret_blocks
        squares = self._ret_square_blocks
        r2 = r * r
        for k, (w, g) in enumerate(self._volatility):
            slot = slots[g]
            acc = blocks[k]
            prefix = acc[-1] + r
            acc[-1] = prefix
            s1 = acc[slot] + prefix
            acc = squares[k]
            prefix = acc[-1] + r2
            acc[-1] = prefix
            s2 = acc[slot] + prefix
            var = (s2 - s1 * s1 / w) / (w - 1)
            put(0.0 if ret_run >= w or var < 0.0 else sqrt(var))
        blocks = self._park_blocks
        for k, (w, g) in enumerate(self._volatility):
            acc = blocks[k]
            prefix = acc[-1] + park
            acc[-1] = prefix
            s = acc[slots[g]] + prefix
            mean = park if park_run >= w else s / w
            put(sqrt(mean * PARKINSON_SCALE) if mean > 0.0 else 0.0)

        if t:
            change = c - previous_close
            gain = change if change > 0.0 else 0.0
            loss = -change if change < 0.0 else 0.0
            gains = self._gains
            losses = self._losses
            for k, (alpha, keep, den) in enumerate(self._rsi_params):
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
                put(100.0 * up / moving if moving > 0.0 else RSI_NO_MOVEMENT)
        else:
            for _ in self._rsi_params:
                put(_NAN)

        for back in self._momentum:
            then = close_history[back]
            # 0.0 is the warm-up filler (prices are positive): that row's value is masked.
            put(c / then - 1.0 if then else _NAN)

        volume_history = self._volume
        if t and v == volume_history[-1]:
            self._volume_run = volume_run = self._volume_run + 1
        else:
            self._volume_run = volume_run = 1
        volume_history.append(v)
        blocks = self._volume_blocks
        squares = self._volume_square_blocks
        v2 = v * v
        for k, (w, g) in enumerate(self._volume_windows):
            slot = slots[g]
            acc = blocks[k]
            prefix = acc[-1] + v
            acc[-1] = prefix
            s1 = acc[slot] + prefix
            acc = squares[k]
            prefix = acc[-1] + v2
            acc[-1] = prefix
            s2 = acc[slot] + prefix
            if volume_run >= w:
                put(1.0)
                put(0.0)
                continue
            mean = s1 / w
            put(v / mean if mean > 0.0 else 1.0)
            var = (s2 - s1 * s1 / w) / (w - 1)
            std = sqrt(var) if var > 0.0 else 0.0
            put((v - mean) / std if std > 0.0 else 0.0)

        taker_buy = candle.taker_buy_volume
        if taker_buy is None or taker_buy != taker_buy:
            net = 0.0
            self._last_missing = last_missing = t
            flow = _NAN
        else:
            net = 2.0 * taker_buy - v
            last_missing = self._last_missing
            flow = net / v if v > 0.0 else 0.0
        if self._with_flow:
            put(flow)
        net_history = self._net
        net_history.append(net)
        blocks = self._net_blocks
        volumes = self._flow_volume_blocks
        for k, (w, g) in enumerate(self._taker):
            slot = slots[g]
            acc = blocks[k]
            prefix = acc[-1] + net
            acc[-1] = prefix
            s_net = acc[slot] + prefix
            acc = volumes[k]
            prefix = acc[-1] + v
            acc[-1] = prefix
            s_volume = acc[slot] + prefix
            if t - last_missing < w:
                put(_NAN)
            else:
                put(s_net / s_volume if s_volume > 0.0 else 0.0)

        if self._with_shape:
            candle_range = h - lo
            if candle_range > 0.0:
                put((c - o) / candle_range)
                put((h - (o if o > c else c)) / candle_range)
                put(((c if o > c else o) - lo) / candle_range)
                put((c - lo) / candle_range)
            else:
                put(0.0)
                put(0.0)
                put(0.0)
                put(0.5)
            put(log_range)

        if t < self._warmup:
            for position, first in enumerate(self._first_valid):
                if t < first:
                    out[position] = _NAN
        return tuple(out)
