"""The synthetic market: a deterministic, trade-level BTC-like market for research and replay.

It lives in the kernel because research ingests its trades as candles and the live replay
server streams the very same trades: both must see one market, trade for trade.

Two levels, so that any range can be generated on its own and still agree exactly with
every other range (``trades(a, c) == concat(trades(a, b), trades(b, c))``):

**Hourly (coarse) process**, sequential from ``ORIGIN_MS`` (2017-01-01T00:00Z), computed in
pages of ``PAGE_HOURS`` hours with one random generator per page and memoised, so reaching
2024 costs about 60 000 scalar steps (0.1 s) once per process. Per hour ``h``:

- hidden regime, a Markov chain over range / trend-up / trend-down (``TRANSITIONS``; mean
  stays of about 67, 40 and 33 hours);
- volatility ``sigma_h``: GARCH(1, 1) on hourly log returns (``GARCH_ALPHA``, ``GARCH_BETA``,
  long-run ``SIGMA_BAR`` = 0.6 %/h), times a regime multiplier (range 0.85, up 1.0, down
  1.25) and a time-of-day factor peaking at 15:00 UTC (+/- 20 %);
- fat tails: the hour's return is Gaussian with variance ``sigma_h^2 * W_h``, where ``W_h``
  is inverse-gamma with mean 1, so hourly returns are Student-t (5 d.o.f.) given sigma_h;
- order-flow bias ``b_h``: taker-buy probability offset, an AR(1) across hours (0.8) around
  +0.02 in trend-up, -0.02 in trend-down, 0 in range;
- the hour's log return ``T_h = drift + FLOW_RETURN * b_h * sigma_h + sigma_h sqrt(W_h) n_h``
  with drift ``+/- 0.06 SIGMA_BAR`` in trends, a pull of 3 %/h towards the 24-hour EMA of
  log price in range (mean reversion), and a pull towards ``start_price`` with a half-life
  of about a year (keeps the price in the same order of magnitude forever);
- the anchor (log price at the hour's start, ``start_price`` at the origin), the trade count
  (Poisson: 18 trades/min when the hour's volatility is SIGMA_BAR, more when volatile,
  within 6..60; about 15/min on average) and so the id of the hour's first trade (ids count
  every trade since the origin).

**Trades (fine) within hour h**, drawn from a generator seeded by (seed, symbol, h) alone:

- minute log-volatility, AR(1) 0.9 with s.d. 0.45, sets each minute's share of the hour's
  variance and its share of the trades (more trades in volatile minutes);
- minute flow deviation ``d_k``, AR(1) 0.7 with s.d. 0.04, demeaned over the hour; taker-buy
  probability ``0.5 + b_h + d_k``; each trade's side is drawn from it;
- each minute drifts by ``sigma_m * (CONTEMP_FLOW * d_k + LEAD_FLOW * d_{k-1})``: the flow
  imbalance of a minute moves its own price and, weakly, the next minute's (plus a burst's
  move, item 4 below);
- each trade adds Student-t (3 d.o.f.) noise plus the price impact of its *surprise* flow
  ``KAPPA * (side - E[side]) * sqrt(quantity / median)``, 25 % of the trade's variance;
- trade sizes are log-normal (s.d. 1.0) around a median notional of $300 at start price;
- a variance-weighted bridge adds ``(T_h - sum) * v_i / V`` so the hour ends exactly at the
  next anchor. Every predictable drift inside the hour has zero hourly sum (d is demeaned)
  or is part of T_h (a burst's move), so the bridge only reconciles noise, the law of a
  Gaussian path conditioned on its sum.

Structure a model on candle features can find (1 to 3 weak, all real):
1. momentum: trend regimes persist for tens of hours, so past returns predict the sign of
   future returns; range regimes revert to their 24-hour mean;
2. order flow leads returns: at 1 minute, taker imbalance (taker_buy_volume / volume)
   predicts the next minute's return (via LEAD_FLOW and the persistence of d); at 1 hour,
   the previous hours' imbalance estimates b_h, which is persistent and moves T_h;
3. volatility clustering (GARCH, minute log-vol), a daily volatility cycle and trade counts
   that rise with volatility: candle ranges and counts predict future ranges.
4. **flow bursts, the demo's edge** (stated, and large enough to trade): each hour, with
   probability ``BURST_CHANCE`` (15 %, its own generator), a burst of sign +1 or -1 (even
   odds) starts at a minute drawn in [0, ``LAST_BURST_START``]: for ``BURST_MINUTES`` (5)
   minutes the taker-buy probability moves by ``sign * BURST_FLOW`` (to about 95 % buys or
   sells) and those minutes draw ``BURST_ACTIVITY`` (3) times their share of the hour's
   trades; then, over the next ``MOVE_MINUTES`` (20), the price drifts by
   ``sign * BURST_MOVE`` (1 % of log price), added to the hour's return T_h so the bridge
   leaves it in place. The paper broker's round trip costs 0.24 % (tradepipe/costs.py), so a
   long entered after a buy burst, with a take-profit inside the move, earns after costs:
   the demo spec (research/specs/btcusdt_1m.toml) is built on this. Bursts are far plainer
   than anything a real market offers and add about 40 % to the hourly variance.
Known artifacts: minute log-volatility and flow deviations restart at each hour (the hour
keeps the totals), a minute's lead effect does not cross the hour boundary, and a burst and
its move always fit inside their hour.

Prices are rounded to a tick of 1e-6 of the start price's order of magnitude (0.01 at
30 000), quantities to 1e-5. Times are ms since the epoch, trade ids increase by one.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt
import pandas as pd

from tradepipe.candles import TRADE_COLUMNS

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

ORIGIN_MS = 1_483_228_800_000  # 2017-01-01T00:00:00Z: the market's first hour
HOUR_MS = 3_600_000
MINUTE_MS = 60_000
MINUTES = 60
PAGE_HOURS = 8_192  # about 341 days of hourly state per memoised page

# Hidden regimes and their hourly Markov chain (rows: from; columns: to).
RANGE, TREND_UP, TREND_DOWN = 0, 1, 2
TRANSITIONS = ((0.985, 0.0075, 0.0075), (0.02, 0.975, 0.005), (0.025, 0.005, 0.97))
DRIFT_IN_SIGMAS = (0.0, 0.06, -0.06)
FLOW_BIAS = (0.0, 0.02, -0.02)
VOL_MULTIPLIER = (0.85, 1.0, 1.25)

SIGMA_BAR = 0.006  # long-run hourly volatility of log price (about 56 % a year)
GARCH_ALPHA, GARCH_BETA = 0.06, 0.92
SIGMA_FLOOR, SIGMA_CAP = 0.25 * SIGMA_BAR, 6.0 * SIGMA_BAR
HOURLY_T_DF = 5
FLOW_PHI, FLOW_SD, FLOW_RETURN = 0.8, 0.03, 2.0
RANGE_REVERSION = 0.03
EMA_ALPHA = 1.0 - 0.5 ** (1.0 / 24.0)
LEVEL_REVERSION = math.log(2.0) / (365.0 * 24.0)
SEASON_AMPLITUDE, SEASON_PEAK_HOUR = 0.2, 15
BASE_RATE, RATE_ELASTICITY, MIN_RATE, MAX_RATE = 18.0, 0.5, 6.0, 60.0

# Flow bursts, the demo's edge (module docstring, item 4): in a BURST_CHANCE share of hours,
# BURST_MINUTES of one-sided taker flow, then a BURST_MOVE log move over MOVE_MINUTES.
BURST_CHANCE = 0.15
BURST_MINUTES, MOVE_MINUTES = 5, 20
BURST_FLOW, BURST_MOVE, BURST_ACTIVITY = 0.45, 0.01, 3.0
LAST_BURST_START = MINUTES - BURST_MINUTES - MOVE_MINUTES

LOGVOL_PHI, LOGVOL_SD = 0.9, 0.45
FLOW_DEV_PHI, FLOW_DEV_SD = 0.7, 0.04
CONTEMP_FLOW, LEAD_FLOW = 3.0, 3.0
IMPACT_SHARE = 0.25
TRADE_T_DF = 3
SIZE_LOG_SD = 1.0
MEDIAN_NOTIONAL = 300.0
KAPPA = math.sqrt(IMPACT_SHARE / math.exp(SIZE_LOG_SD**2 / 2.0))
NOISE_WEIGHT = math.sqrt(1.0 - IMPACT_SHARE)


def _ar1_matrix(phi: float, sd: float, length: int = MINUTES) -> FloatArray:
    """L such that L @ standard normals is a stationary AR(1) path with marginal s.d. `sd`."""
    lags = np.arange(length)[:, None] - np.arange(length)[None, :]
    matrix = np.where(lags >= 0, phi ** np.clip(lags, 0, None), 0.0)
    matrix[:, 1:] *= math.sqrt(1.0 - phi * phi)  # innovations after the stationary start
    return np.asarray(matrix * sd, dtype=np.float64)


_LOGVOL_MATRIX = _ar1_matrix(LOGVOL_PHI, LOGVOL_SD)
_FLOW_DEV_MATRIX = _ar1_matrix(FLOW_DEV_PHI, FLOW_DEV_SD)
_SEASON = tuple(
    1.0 + SEASON_AMPLITUDE * math.cos(2.0 * math.pi * (hour - SEASON_PEAK_HOUR) / 24.0)
    for hour in range(24)
)
_CUMULATIVE_TRANSITIONS = tuple((row[0], row[0] + row[1]) for row in TRANSITIONS)


@dataclass(frozen=True, slots=True)
class _CoarseState:
    regime: int
    variance: float  # GARCH variance before regime and season multipliers
    log_price: float
    ema: float
    flow_noise: float
    next_trade_id: int


@dataclass(frozen=True, slots=True)
class _CoarsePage:
    regime: npt.NDArray[np.int8]
    sigma: FloatArray  # sigma_h: GARCH x regime x season
    noise_sd: FloatArray  # sigma_h * sqrt(W_h): the hour's noise s.d.
    flow_bias: FloatArray
    anchor: FloatArray  # log price at the hour's start
    target: FloatArray  # T_h, the hour's log return
    count: IntArray
    first_id: IntArray
    burst_sign: npt.NDArray[np.int8]  # +1 a buy burst, -1 a sell burst, 0 none
    burst_minute: IntArray  # the burst's first minute in the hour
    end: _CoarseState


def _initial_state(start_price: float) -> _CoarseState:
    log_price = math.log(start_price)
    return _CoarseState(RANGE, SIGMA_BAR**2, log_price, log_price, 0.0, 1)


@lru_cache(maxsize=128)  # 128 pages (~120 years) of ~0.5 MB per market
def _coarse_page(entropy: tuple[int, int], start_price: float, page: int) -> _CoarsePage:
    """Hourly state of hours [page * PAGE_HOURS, (page + 1) * PAGE_HOURS) after the origin.

    Pure and memoised: page p continues from the end state of page p - 1. Callers warm the
    cache in page order, so the recursion is one level deep.
    """
    state = (
        _initial_state(start_price)
        if page == 0
        else _coarse_page(entropy, start_price, page - 1).end
    )
    rng = np.random.default_rng([*entropy, 0, page])
    regime_draws = rng.random(PAGE_HOURS).tolist()
    flow_draws = rng.standard_normal(PAGE_HOURS).tolist()
    return_draws = rng.standard_normal(PAGE_HOURS).tolist()
    mixing = ((HOURLY_T_DF - 2.0) / rng.chisquare(HOURLY_T_DF, PAGE_HOURS)).tolist()
    # bursts from a generator of their own, so the rest of the market keeps its draws
    burst_rng = np.random.default_rng([*entropy, 2, page])
    burst_sign = np.where(
        burst_rng.random(PAGE_HOURS) < BURST_CHANCE,
        np.where(burst_rng.random(PAGE_HOURS) < 0.5, 1, -1),
        0,
    ).astype(np.int8)
    burst_minute = burst_rng.integers(0, LAST_BURST_START + 1, PAGE_HOURS).astype(np.int64)
    burst_moves = (BURST_MOVE * burst_sign).tolist()

    regime, variance, flow_noise = state.regime, state.variance, state.flow_noise
    log_price, ema = state.log_price, state.ema
    log_origin = math.log(start_price)
    flow_innovation = math.sqrt(1.0 - FLOW_PHI**2)
    omega = SIGMA_BAR**2 * (1.0 - GARCH_ALPHA - GARCH_BETA)
    first_hour_of_day = (page * PAGE_HOURS) % 24
    regimes, sigmas, noise_sds, biases, anchors, targets = [], [], [], [], [], []
    for i in range(PAGE_HOURS):
        low, high = _CUMULATIVE_TRANSITIONS[regime]
        draw = regime_draws[i]
        regime = RANGE if draw < low else (TREND_UP if draw < high else TREND_DOWN)
        flow_noise = FLOW_PHI * flow_noise + flow_innovation * flow_draws[i]
        bias = FLOW_BIAS[regime] + FLOW_SD * flow_noise
        season = _SEASON[(first_hour_of_day + i) % 24]
        sigma = math.sqrt(variance) * VOL_MULTIPLIER[regime] * season
        drift = DRIFT_IN_SIGMAS[regime] * SIGMA_BAR - LEVEL_REVERSION * (log_price - log_origin)
        if regime == RANGE:
            drift -= RANGE_REVERSION * (log_price - ema)
        shock = math.sqrt(mixing[i]) * return_draws[i]
        target = drift + FLOW_RETURN * bias * sigma + sigma * shock + burst_moves[i]
        regimes.append(regime)
        sigmas.append(sigma)
        noise_sds.append(sigma * math.sqrt(mixing[i]))
        biases.append(bias)
        anchors.append(log_price)
        targets.append(target)
        log_price += target
        ema += EMA_ALPHA * (log_price - ema)
        variance = omega + (GARCH_ALPHA * shock * shock + GARCH_BETA) * variance
        variance = min(max(variance, SIGMA_FLOOR**2), SIGMA_CAP**2)

    noise_sd = np.asarray(noise_sds)
    rate = np.clip(BASE_RATE * (noise_sd / SIGMA_BAR) ** RATE_ELASTICITY, MIN_RATE, MAX_RATE)
    count = rng.poisson(rate * MINUTES).astype(np.int64)
    first_id = state.next_trade_id + np.concatenate(([0], np.cumsum(count)[:-1]))
    end = _CoarseState(
        regime, variance, log_price, ema, flow_noise, state.next_trade_id + int(count.sum())
    )
    return _CoarsePage(
        regime=np.asarray(regimes, dtype=np.int8),
        sigma=np.asarray(sigmas),
        noise_sd=noise_sd,
        flow_bias=np.asarray(biases),
        anchor=np.asarray(anchors),
        target=np.asarray(targets),
        count=count,
        first_id=first_id.astype(np.int64),
        burst_sign=burst_sign,
        burst_minute=burst_minute,
        end=end,
    )


_Block = tuple[IntArray, IntArray, FloatArray, FloatArray, BoolArray]
_EMPTY_INT = np.empty(0, np.int64)
_EMPTY_BLOCK: _Block = (_EMPTY_INT, _EMPTY_INT, np.empty(0), np.empty(0), np.empty(0, bool))


class SyntheticMarket:
    """A deterministic market of one symbol; the same (symbol, seed, start_price) is the
    same market in every process. Different symbols are independent markets."""

    def __init__(self, symbol: str = "BTCUSDT", seed: int = 7, start_price: float = 30_000.0):
        if seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed}")
        if not (math.isfinite(start_price) and start_price > 0):
            raise ValueError(f"start_price must be a positive number, got {start_price}")
        self.symbol = symbol
        self.seed = seed
        self.start_price = float(start_price)
        self._entropy = (seed, zlib.crc32(symbol.encode("utf-8")))
        self.price_decimals = 6 - math.floor(math.log10(self.start_price))
        self.tick_size = 10.0**-self.price_decimals
        self._median_quantity = MEDIAN_NOTIONAL / self.start_price

    def trades(self, start_ms: int, end_ms: int) -> pd.DataFrame:
        """Trades with start_ms <= time_ms < end_ms: TRADE_COLUMNS, in time and id order.

        The whole range is built in memory (about 0.7 MB a day, 60 MB for three months);
        the ingest asks for a day at a time.
        """
        start_ms, end_ms = int(start_ms), int(end_ms)
        if start_ms < ORIGIN_MS:
            raise ValueError(
                f"the synthetic market starts at 2017-01-01T00:00Z ({ORIGIN_MS} ms); "
                f"{start_ms} is earlier"
            )
        blocks = [self._block(hour) for hour in self._hours(start_ms, end_ms)] or [_EMPTY_BLOCK]
        times, ids, prices, quantities, buys = (
            np.concatenate(part) for part in zip(*blocks, strict=True)
        )
        keep = (times >= start_ms) & (times < end_ms)
        return pd.DataFrame(
            {
                "time_ms": times[keep],
                "trade_id": ids[keep],
                "price": prices[keep],
                "quantity": quantities[keep],
                "taker_buy": buys[keep],
            },
            columns=list(TRADE_COLUMNS),
        )

    def hourly_states(self, start_ms: int, end_ms: int) -> pd.DataFrame:
        """The hidden hourly state (for diagnostics and tests; a model never sees it):
        hour_start_ms, regime (0 range, 1 up, 2 down), sigma, flow_bias, open_price,
        burst_sign (+1 buy burst, -1 sell burst, 0 none) and burst_minute (its first)."""
        hours = self._hours(max(int(start_ms), ORIGIN_MS), int(end_ms))
        rows = [self._coarse(hour) for hour in hours]
        return pd.DataFrame(
            {
                "hour_start_ms": [ORIGIN_MS + hour * HOUR_MS for hour in hours],
                "regime": [int(page.regime[i]) for page, i in rows],
                "sigma": [float(page.sigma[i]) for page, i in rows],
                "flow_bias": [float(page.flow_bias[i]) for page, i in rows],
                "open_price": [math.exp(page.anchor[i]) for page, i in rows],
                "burst_sign": [int(page.burst_sign[i]) for page, i in rows],
                "burst_minute": [int(page.burst_minute[i]) for page, i in rows],
            }
        )

    @staticmethod
    def _hours(start_ms: int, end_ms: int) -> range:
        if end_ms <= start_ms:
            return range(0)
        return range((start_ms - ORIGIN_MS) // HOUR_MS, -((ORIGIN_MS - end_ms) // HOUR_MS))

    def _coarse(self, hour: int) -> tuple[_CoarsePage, int]:
        page = hour // PAGE_HOURS
        for earlier in range(page + 1):  # warm in order: keeps the page recursion shallow
            _coarse_page(self._entropy, self.start_price, earlier)
        return _coarse_page(self._entropy, self.start_price, page), hour % PAGE_HOURS

    def _block(self, hour: int) -> _Block:
        """Every trade of one hour, a function of (seed, symbol, hour) and the hour's state."""
        page, i = self._coarse(hour)
        count = int(page.count[i])
        if count == 0:
            return _EMPTY_BLOCK
        noise_sd = float(page.noise_sd[i])
        rng = np.random.default_rng([*self._entropy, 1, hour])
        latent = rng.standard_normal((2, MINUTES))
        log_vol = _LOGVOL_MATRIX @ latent[0]
        flow_dev = _FLOW_DEV_MATRIX @ latent[1]
        flow_dev -= flow_dev.mean()
        variance_share = np.exp(2.0 * log_vol)
        variance_share /= variance_share.sum()
        activity = np.exp(log_vol)
        sign, first_burst = int(page.burst_sign[i]), int(page.burst_minute[i])
        if sign != 0:  # a rush of takers: more of the hour's trades in the burst's minutes
            activity[first_burst : first_burst + BURST_MINUTES] *= BURST_ACTIVITY
        per_minute = rng.multinomial(count, activity / activity.sum())
        offsets = np.repeat(np.arange(MINUTES) * MINUTE_MS, per_minute)
        offsets += rng.integers(0, MINUTE_MS, count)
        offsets.sort()
        minute = offsets // MINUTE_MS

        burst_flow = np.zeros(MINUTES)
        burst_drift = np.zeros(MINUTES)
        if sign != 0:
            moving = first_burst + BURST_MINUTES
            burst_flow[first_burst:moving] = sign * BURST_FLOW
            burst_drift[moving : moving + MOVE_MINUTES] = sign * BURST_MOVE / MOVE_MINUTES
        buy_probability = np.clip(0.5 + page.flow_bias[i] + flow_dev + burst_flow, 0.02, 0.98)
        taker_buy = rng.random(count) < buy_probability[minute]
        size_draw = rng.standard_normal(count)
        noise = np.clip(rng.standard_t(TRADE_T_DF, count), -30.0, 30.0)
        noise *= math.sqrt((TRADE_T_DF - 2.0) / TRADE_T_DF)

        trades_in_minute = per_minute[minute].astype(np.float64)
        variance = noise_sd**2 * variance_share[minute] / trades_in_minute
        sigma_minute = noise_sd / math.sqrt(MINUTES)
        lagged_dev = np.concatenate(([0.0], flow_dev[:-1]))
        minute_drift = sigma_minute * (CONTEMP_FLOW * flow_dev + LEAD_FLOW * lagged_dev)
        minute_drift += burst_drift  # part of T_h: the bridge below leaves it in place
        surprise_flow = np.where(taker_buy, 1.0, -1.0) - (2.0 * buy_probability[minute] - 1.0)
        returns = minute_drift[minute] / trades_in_minute + np.sqrt(variance) * (
            NOISE_WEIGHT * noise + KAPPA * surprise_flow * np.exp(0.5 * SIZE_LOG_SD * size_draw)
        )
        returns += (page.target[i] - returns.sum()) * (variance / variance.sum())
        log_price = page.anchor[i] + np.cumsum(returns)
        prices = np.maximum(np.round(np.exp(log_price), self.price_decimals), self.tick_size)
        quantities = self._median_quantity * np.exp(SIZE_LOG_SD * size_draw)
        quantities = np.maximum(np.round(quantities, 5), 1e-5)
        times = ORIGIN_MS + hour * HOUR_MS + offsets
        ids = page.first_id[i] + np.arange(count, dtype=np.int64)
        return times, ids, prices, quantities, taker_buy
