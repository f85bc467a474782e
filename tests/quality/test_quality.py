"""Quality figures with answers worked out by hand: AUC, precision at the threshold, hit rate,
calibration, PSI, and the triple-barrier outcomes of decisions over recorded candles."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from tradepipe.candles import CANDLE_COLUMNS
from tradepipe.quality import (
    PSI_FLOOR,
    Distribution,
    QualityError,
    QualityReference,
    auc,
    build_reference,
    calibration_bins,
    classification_figures,
    live_outcomes,
    live_quality,
    psi,
    quality_over_time,
)

MINUTE = 60_000


def bot_config(take_profit_pct: float, threshold: float = 0.5) -> str:
    return json.dumps(
        {
            "capital_per_trade": 100.0,
            "take_profit_pct": take_profit_pct,
            "stop_loss_pct": 1.0,
            "max_holding_seconds": 180.0,
            "maker_order_timeout_seconds": 60.0,
            "confidence_threshold": threshold,
        }
    )


def candles() -> pd.DataFrame:
    rows = [  # open, high, low, close of 1-minute candles 0..7
        (100, 100, 100, 100),
        (100, 100.2, 99.9, 100),
        (100, 101.5, 99.9, 101),
        (101, 101.1, 99.5, 99.8),
        (99.8, 99.9, 98, 98.5),
        (98.5, 98.5, 98.5, 98.5),
        (98.5, 98.5, 98.5, 98.5),
        (98.5, 98.5, 98.5, 98.5),
    ]
    frame = pd.DataFrame(
        [(i * MINUTE, *prices, 1.0, math.nan, math.nan) for i, prices in enumerate(rows)],
        columns=list(CANDLE_COLUMNS),
    )
    return frame.astype({"start_ms": "int64"} | {c: "float64" for c in CANDLE_COLUMNS[1:]})


def decisions(rows: list[tuple[int, str, float | None]]) -> pd.DataFrame:
    """Decision-log rows: (candle index, bot config, probability)."""
    return pd.DataFrame(
        {
            "candle_start_ms": [index * MINUTE for index, _, _ in rows],
            "symbol": "BTCUSDT",
            "timeframe": "1m",
            "bot_config": [config for _, config, _ in rows],
            "probability": [p for _, _, p in rows],
            "feature_names": [("a", "b")] * len(rows),
            "feature_values": [(float(i), float(-i)) for i, _, _ in rows],
            "feature_spec_hash": "spec",
        }
    )


def test_auc_counts_pairs_and_ties_count_half() -> None:
    assert auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75  # 3 of 4 pairs ordered
    assert auc([0, 1], [0.5, 0.5]) == 0.5
    assert math.isnan(auc([1, 1], [0.2, 0.3]))


def test_classification_figures_by_hand() -> None:
    figures = classification_figures([1, 0, 1, 0, 1], [0.9, 0.8, 0.3, 0.2, 0.7], 0.5)
    assert figures["precision_at_threshold"] == pytest.approx(2 / 3)  # entered on 0.9, 0.8, 0.7
    assert figures["hit_rate"] == pytest.approx(3 / 5)  # right calls: 0.9, 0.2, 0.7
    assert figures["signal_rate"] == pytest.approx(3 / 5)
    assert figures["auc"] == pytest.approx(4 / 6)
    # each row alone in its bin: the mean gap is the mean |p - y|
    assert figures["calibration_error"] == pytest.approx((0.1 + 0.8 + 0.7 + 0.2 + 0.3) / 5)
    # a threshold per row (two bots sharing the model): 0.8 is above 0.5 but not above 0.85
    per_row = classification_figures([1, 0, 1], [0.9, 0.8, 0.7], [0.5, 0.85, 0.5])
    assert per_row["precision_at_threshold"] == 1.0 and per_row["hit_rate"] == 1.0
    assert math.isnan(classification_figures([0, 0], [0.1, 0.2], 0.5)["precision_at_threshold"])
    assert classification_figures([], [], 0.5)["rows"] == 0.0


def test_classification_figures_refuse_bad_input() -> None:
    with pytest.raises(QualityError, match="one label per row"):
        classification_figures([1, 0], [0.5], 0.5)
    with pytest.raises(QualityError, match="unlabelled"):
        classification_figures([1, -1], [0.5, 0.6], 0.5)
    with pytest.raises(QualityError, match="unlabelled"):
        classification_figures([1, 0], [0.5, math.nan], 0.5)


def test_calibration_bins() -> None:
    bins = calibration_bins([1, 0, 1, 1], [0.05, 0.07, 0.95, 1.0])
    assert len(bins) == 10 and bins[0].count == 2 and bins[9].count == 2  # 1.0 in the last bin
    assert bins[0].mean_probability == pytest.approx(0.06) and bins[0].positive_rate == 0.5
    assert bins[9].positive_rate == 1.0 and math.isnan(bins[5].positive_rate)


def test_psi_zero_on_the_same_values_and_known_on_a_full_shift() -> None:
    values = np.arange(1.0, 101.0)
    reference = Distribution.of(values)
    assert len(reference.edges) == 9 and reference.fractions == pytest.approx([0.1] * 10)
    assert psi(reference, values) == 0.0
    assert psi(reference, np.random.default_rng(3).permutation(values)) == 0.0
    shifted = psi(reference, values + 1_000)  # everything beyond the last edge
    expected = 9 * (PSI_FLOOR - 0.1) * math.log(PSI_FLOOR / 0.1) + 0.9 * math.log(1 / 0.1)
    assert shifted == pytest.approx(expected) and shifted > 8
    half = psi(reference, values[values <= 50])  # the upper half missing
    assert half == pytest.approx(
        5 * (0.2 - 0.1) * math.log(2) + 5 * (PSI_FLOOR - 0.1) * math.log(PSI_FLOOR / 0.1)
    )
    assert math.isnan(psi(reference, [math.nan]))


def test_distribution_of_a_discrete_feature_and_missing_values() -> None:
    values = np.array([0.0] * 50 + [1.0] * 50 + [math.nan] * 25)
    reference = Distribution.of(values)
    assert reference.edges == (0.0, 0.5, 1.0)  # a value on an edge goes to the bin below
    assert reference.fractions == pytest.approx([0.5, 0.0, 0.5, 0.0])
    assert reference.missing_fraction == pytest.approx(0.2) and reference.count == 100
    assert psi(reference, values) == 0.0
    assert psi(reference, [1.0] * 10) > 1
    with pytest.raises(QualityError, match="no defined value"):
        Distribution.of([math.nan])


def test_reference_round_trips_through_json_and_refuses_a_bad_one() -> None:
    rng = np.random.default_rng(1)
    features = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    labels = (rng.random(200) > 0.5).astype(int)
    reference = build_reference(features, labels, rng.random(200), 0.6)
    again = QualityReference.from_json(reference.to_json())
    assert again == reference and again.threshold == 0.6 and set(again.features) == {"a", "b"}
    with pytest.raises(QualityError, match="format"):
        QualityReference.from_json(json.dumps({"format": 99}))
    with pytest.raises(QualityError, match="unreadable"):
        QualityReference.from_json("{not json")
    broken = json.loads(reference.to_json())
    broken["features"]["a"]["fractions"] = [1.0]
    with pytest.raises(QualityError, match="one fraction more"):
        QualityReference.from_json(json.dumps(broken))


def test_live_outcomes_by_hand() -> None:
    narrow, wide = bot_config(1.0), bot_config(3.0)
    rows = decisions(
        [
            (0, narrow, 0.9),  # enters at 100 on candle 1; candle 2 reaches 101: take-profit
            (1, narrow, 0.8),  # enters at 100 on candle 2, reaches 101.5: take-profit
            (2, narrow, 0.7),  # enters at 101 on candle 3, falls to 99.5: stop-loss
            (3, narrow, 0.2),  # enters at 99.8 on candle 4, falls to 98: stop-loss
            (4, narrow, 0.6),  # enters at 98.5 on candle 5, flat to candle 7: timeout
            (5, narrow, 0.5),  # its timeout candle (8) is not recorded yet: not matured
            (0, wide, 0.9),  # +-3 %: no barrier touched by candle 3: timeout
            (100, narrow, 0.9),  # no such candle recorded
        ]
    )
    asked: list[tuple[str, str]] = []

    def source(symbol: str, timeframe: str) -> pd.DataFrame:
        asked.append((symbol, timeframe))
        return candles()

    outcomes = live_outcomes(rows, source)
    assert outcomes["label"].tolist() == [1, 1, 0, 0, 0, -1, 0, -1]
    assert outcomes["exit_time_ms"].tolist()[:2] == [3 * MINUTE, 3 * MINUTE]
    assert asked == [("BTCUSDT", "1m")]  # one read per series, not per bot config
    assert [*rows.columns.tolist(), "label", "exit_time_ms"] == outcomes.columns.tolist()

    quality = live_quality(outcomes, None)
    assert quality.decisions == 8 and quality.matured == 6
    # matured: p 0.9 0.8 0.7 0.2 0.6 0.9 with labels 1 1 0 0 0 0, threshold 0.5
    assert quality.figures["precision_at_threshold"] == pytest.approx(2 / 5)
    assert quality.figures["hit_rate"] == pytest.approx(3 / 6)
    assert quality.figures["auc"] == pytest.approx(6.5 / 8)  # 0.9 ties the negative 0.9
    assert quality.feature_psi == {} and math.isnan(quality.prediction_psi)


def test_live_outcomes_refuse_an_unreadable_config_and_skip_unrecorded_series() -> None:
    with pytest.raises(QualityError, match="bot config"):
        live_outcomes(decisions([(0, '{"take_profit_pct": -1}', 0.5)]), lambda s, t: candles())
    empty = live_outcomes(decisions([(0, bot_config(1.0), 0.5)]), lambda s, t: candles().head(0))
    assert empty["label"].tolist() == [-1]


def test_live_quality_drift_against_the_reference() -> None:
    config = bot_config(1.0)
    rows = live_outcomes(
        decisions([(i % 6, config, 0.1 + 0.1 * (i % 8)) for i in range(48)]), lambda s, t: candles()
    )
    recorded = pd.DataFrame(list(rows["feature_values"]), columns=["a", "b"])
    same = build_reference(recorded, np.zeros(48), rows["probability"], 0.5)
    shifted = build_reference(recorded + 10, np.zeros(48), rows["probability"] + 0.5, 0.5)
    assert live_quality(rows, same).feature_psi == {"a": 0.0, "b": 0.0}
    assert live_quality(rows, same).prediction_psi == 0.0
    far = live_quality(rows, shifted)
    assert far.feature_psi["a"] > 5 and far.prediction_psi > 5 and far.max_feature_psi > 5
    flat = far.flat()
    # candle 5 (8 of the 48 rows) has not matured
    assert flat["live/matured"] == 40 and flat["val/positive_rate"] == 0.0
    assert flat["drift/psi/b"] == far.feature_psi["b"]
    missing = build_reference(pd.DataFrame({"c": [1.0, 2.0]}), [0, 1], [0.2, 0.8], 0.5)
    assert math.isnan(live_quality(rows, missing).feature_psi["c"])  # not recorded live


def test_quality_over_time_buckets_by_candle_time() -> None:
    config = bot_config(1.0)
    outcomes = live_outcomes(
        decisions([(0, config, 0.9), (1, config, 0.8), (3, config, 0.2)]), lambda s, t: candles()
    )
    series = quality_over_time(outcomes, None, 2 * MINUTE)
    assert [(end, q.decisions, q.matured) for end, q in series] == [
        (2 * MINUTE, 2, 2),
        (4 * MINUTE, 1, 1),
    ]
    with pytest.raises(QualityError, match="positive"):
        quality_over_time(outcomes, None, 0)


def test_recorded_features_that_do_not_match_their_names_are_refused() -> None:
    rows = live_outcomes(decisions([(0, bot_config(1.0), 0.9)]), lambda s, t: candles())
    rows["feature_values"] = [(1.0,)]  # two names, one value
    reference = build_reference(pd.DataFrame({"a": [1.0, 2.0]}), [0, 1], [0.2, 0.8], 0.5)
    with pytest.raises(QualityError, match="do not match its 2 feature names"):
        live_quality(rows, reference)
