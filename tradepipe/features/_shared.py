"""Constants and derived parameters that both implementations must take from one place.

Batch and incremental are written to perform the same floating-point operations in the same
order, so they agree bit for bit when they start from the same row (and to rounding when
the live state was warmed up from a different starting row). That only holds if every constant
below is computed once, here, and never re-derived with a different expression.
"""

from __future__ import annotations

import math

from tradepipe.features.spec import FeatureSpec

# Windowed sums never subtract the value that leaves the window (a running s += new - old
# keeps that value's rounding residue forever, and a window of zeros after a spike would not
# sum to zero). Rows are cut into blocks of the window's length; the sum over the window
# ending at offset j of a block is (sum of the previous block from offset j + 1) + (sum of
# this block up to j). Both parts hold only values inside the window, so the error is that
# of summing the window itself. Suffix sums are formed right to left and prefix sums left to
# right, starting from 0.0, in both implementations.

# Parkinson (1980): sigma^2 = E[ln(H/L)^2] / (4 ln 2).
PARKINSON_SCALE = 1.0 / (4.0 * math.log(2.0))

# "Row of the last candle without taker volume" before there has been any such row.
NO_MISSING_ROW = -(1 << 62)

# A price-based RSI over a window without movement: neither side dominates.
RSI_NO_MOVEMENT = 50.0


class CandleDataError(ValueError):
    """Candles that features cannot be computed from (order, non-positive prices...)."""


def summed_windows(spec: FeatureSpec) -> tuple[int, ...]:
    """Distinct window lengths of every windowed sum, ascending."""
    return tuple(
        sorted(
            {
                *spec.sma_windows,
                *spec.volatility_windows,
                *spec.volume_windows,
                *spec.taker_flow_windows,
            }
        )
    )


def history_length(spec: FeatureSpec) -> int:
    """Past values the incremental state must keep: the longest look-back plus the current."""
    lookbacks = (
        *spec.return_horizons,
        *spec.momentum_periods,
        *spec.sma_windows,
        *spec.volatility_windows,
        *spec.volume_windows,
        *spec.taker_flow_windows,
        1,
    )
    return max(lookbacks) + 1


def ema_center_of_mass(span: int) -> float:
    """Span -> pandas' centre of mass ((span - 1) / 2, exact for integers)."""
    return (span - 1) / 2.0


def wilder_center_of_mass(period: int) -> float:
    """Wilder's smoothing (alpha = 1 / period) as a centre of mass."""
    return float(period - 1)


def smoothing(center_of_mass: float) -> tuple[float, float, float]:
    """(alpha, 1 - alpha, (1 - alpha) + alpha) exactly as pandas' `ewm(adjust=False)` forms them.

    pandas updates y = ((1 - alpha) * y + alpha * x) / ((1 - alpha) + alpha) and keeps y
    unchanged when x == y; the incremental path repeats those operations so that a constant
    series keeps its EMA exactly and both paths round alike.
    """
    alpha = 1.0 / (1.0 + center_of_mass)
    keep = 1.0 - alpha
    return alpha, keep, keep + alpha
