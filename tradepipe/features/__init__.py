"""Features: one specification, two implementations that must agree.

`compute_features` (batch, vectorised over a history: training and backtests) and
`IncrementalFeatures` (one closed candle at a time, O(1): live) compute the features named
by a `FeatureSpec`. The parity tests hold them to 1e-9 relative on real exchange data; by
construction (same operations in the same order, see `_shared`) they agree bit for bit when
started on the same row.

Rows are candles, not clock time: the kernel's gap policy emits no candle for an interval
without trades, so a window of 20 is the last 20 candles, however much time they span.
Every feature at row t uses rows <= t only. c, o, h, l, v are close, open, high, low and
volume; tb is taker buy volume; r_t = ln c_t - ln c_{t-1}; means and sums run over the last
w rows including t; std is the sample std (ddof 1).

| feature (default parameters) | formula | first row defined |
|---|---|---|
| `ret_{h}` (h = 1,3,6,12,24) | ln c_t - ln c_{t-h} | h |
| `close_sma_{w}` (w = 5,10,20,30) | c_t / mean(c) | w - 1 |
| `close_ema_{s}` (s = 12,26) | c_t / ema_s(c): `ewm(span=s, adjust=False)`, from c_0 | s - 1 |
| `logret_std_{w}` (w = 10,30) | std(r) over w returns | w |
| `parkinson_{w}` (w = 10,30) | sqrt(mean(ln(h/l)^2) / (4 ln 2)) | w - 1 |
| `rsi_{n}` (n = 14) | 100 G / (G + L): Wilder means (1/n) of gains, losses of c | n |
| `momentum_{n}` (n = 10) | c_t / c_{t-n} - 1 | n |
| `volume_ratio_{w}` (w = 20) | v_t / mean(v) | w - 1 |
| `volume_zscore_{w}` (w = 20) | (v_t - mean(v)) / std(v) | w - 1 |
| `taker_net_flow` | (tb - (v - tb)) / v: taker buy minus taker sell volume, per volume | 0 |
| `taker_net_flow_{w}` (w = 10) | sum(tb - (v - tb)) / sum(v) over the window | w - 1 |
| `body` | (c - o) / (h - l) | 0 |
| `upper_wick` | (h - max(o, c)) / (h - l) | 0 |
| `lower_wick` | (min(o, c) - l) / (h - l) | 0 |
| `close_location` | (c - l) / (h - l) | 0 |
| `log_range` | ln(h / l) | 0 |

RSI's averages start from the first price change (not Wilder's initial n-row mean) so that
they are one recursion that pandas' `ewm(alpha=1/n, adjust=False)` also computes.

Defined cases, identical in both implementations (flat markets are common: the gappy
1-minute series has long runs of identical candles):
- a window of identical values has mean equal to that value and std exactly 0, so
  `close_sma` is 1, `logret_std`, `parkinson` and `volume_zscore` are 0, `volume_ratio` 1;
- std 0 (or a rounding-negative variance) gives `volume_zscore` 0; mean volume 0 gives
  `volume_ratio` 1; zero volume gives taker flows 0; RSI with no movement is 50;
- a candle with h == l has `body`, wicks 0 and `close_location` 0.5;
- taker flows are NaN on a candle without taker volume, and `taker_net_flow_{w}` stays NaN
  until w candles with taker volume follow the last one without.

Windowed sums never subtract the value leaving the window: each is the sum of a suffix of
the previous block plus a prefix of the current one (see `_shared`), so a long-running engine
carries no rounding residue from values long gone, and a window of zeros sums to zero.
"""

from tradepipe.features._shared import CandleDataError
from tradepipe.features.batch import compute_features
from tradepipe.features.incremental import FeatureState, IncrementalFeatures
from tradepipe.features.spec import IMPLEMENTATION_VERSION, FeatureSpec, default_spec

__all__ = [
    "IMPLEMENTATION_VERSION",
    "CandleDataError",
    "FeatureSpec",
    "FeatureState",
    "IncrementalFeatures",
    "compute_features",
    "default_spec",
]
