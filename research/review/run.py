"""One bot's review: the evidence read, each segment replayed, everything compared."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from research.backtest import BacktestError
from research.review.compare import (
    Divergence,
    compare_decisions,
    compare_features,
    compare_probabilities,
)
from research.review.live_side import live_answers, live_positions, segments_of
from research.review.positions import PositionMatch, ReviewedPosition, match_positions
from research.review.replay import batch_probabilities, replay_segment
from research.review.report import ReviewReport, Segment
from tradepipe.db import create_engine_for, session_scope, strategy_source
from tradepipe.features import FeatureSpec, compute_features, default_spec
from tradepipe.marketdata import MarketDataStore
from tradepipe.marketdata.decisions import feature_frame, read_decisions
from tradepipe.orders import FeeSchedule
from tradepipe.registry import LoadedModel, ModelRegistry
from tradepipe.timeframes import parse_timeframe

__all__ = ["ReviewError", "ReviewInputs", "review_bot"]


class ReviewError(ValueError):
    """A review that cannot be made as asked (no evidence, a version not kept)."""


@dataclass(frozen=True)
class ReviewInputs:
    bot: str
    database_url: str
    market_data_dir: Path
    decision_log_dir: Path
    record_exchange: str
    mlflow_tracking_uri: str
    fees: FeeSchedule
    since_ms: int | None = None
    until_ms: int | None = None
    mlflow_artifact_root: Path | None = None  # where review runs keep their artifacts


def recorded_features(candles: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """Batch features of the recorded candles, indexed by start ms. The series is taken
    as one run, as the engine's incremental state takes it: a candle interval without
    trades has no candle on either side. (An engine restart inside the range starts the
    engine's state over; the review does not, so the warm-up after it shows as feature
    divergences.)"""
    frame = compute_features(candles.reset_index(drop=True), spec)
    frame.index = pd.Index(candles["start_ms"].to_numpy(dtype=np.int64), name="candle_start_ms")
    return frame


def live_open(positions: list[ReviewedPosition], candle_ms: int, step_ms: int) -> int:
    """Live positions open when the strategy decided on `candle_ms` (at its close): entered
    on an earlier candle, not closed by then."""
    decided = candle_ms + step_ms
    return sum(
        1
        for p in positions
        if p.entry_candle_ms < candle_ms and (p.exit_time_ms is None or p.exit_time_ms > decided)
    )


def review_bot(inputs: ReviewInputs) -> ReviewReport:
    decisions = read_decisions(
        inputs.decision_log_dir,
        start_ms=inputs.since_ms,
        end_ms=inputs.until_ms,
        bots=[inputs.bot],
    )
    if decisions.empty:
        raise ReviewError(
            f"bot {inputs.bot}: no decisions recorded in {inputs.decision_log_dir} for the "
            "range asked (is record_decisions on, and the range right?)"
        )
    store = MarketDataStore(inputs.market_data_dir)
    registry: ModelRegistry | None = None  # opened for the first model segment only
    models: dict[tuple[str, str], LoadedModel] = {}
    database = create_engine_for(inputs.database_url)
    divergences: list[Divergence] = []
    segments: list[Segment] = []
    matches: list[PositionMatch] = []
    live_count = backtest_count = 0
    features_compared = probabilities_compared = decisions_compared = agreeing = 0
    largest = 0.0
    first_ms = int(decisions["candle_start_ms"].iloc[0])
    last_ms = int(decisions["candle_start_ms"].iloc[-1])
    symbol = str(decisions["symbol"].iloc[0])
    timeframe = str(decisions["timeframe"].iloc[0])
    try:
        with session_scope(database) as session:
            placed = [
                (int(d), int(c))
                for d, c, e in zip(
                    decisions["decided_ms"],
                    decisions["candle_start_ms"],
                    decisions["entry"],
                    strict=True,
                )
                if e == "placed"
            ]
            every_live: list[ReviewedPosition] = live_positions(session, inputs.bot, placed)
            parts = segments_of(decisions)
            for number, part in enumerate(parts):
                key, rows = part.key, part.rows
                symbol, timeframe = str(key["symbol"]), str(key["timeframe"])
                step = parse_timeframe(timeframe).milliseconds
                seg_first = int(rows["candle_start_ms"].iloc[0])
                seg_last = int(rows["candle_start_ms"].iloc[-1])
                following = parts[number + 1].rows if number + 1 < len(parts) else None
                seg_end = (
                    int(following["candle_start_ms"].iloc[0])
                    if following is not None
                    else (inputs.until_ms if inputs.until_ms is not None else seg_last + step)
                )
                model = None
                if key["model"] is not None and key["model_version"] is not None:
                    ref = (str(key["model"]), str(key["model_version"]))
                    if ref not in models:
                        registry = registry or ModelRegistry(inputs.mlflow_tracking_uri)
                        models[ref] = registry.load(ref[0], version=ref[1])
                    model = models[ref]
                spec = (model.feature_spec() if model is not None else None) or default_spec()
                if spec.content_hash != key["feature_spec_hash"]:
                    divergences.append(
                        Divergence(
                            "feature_spec",
                            _iso(seg_first),
                            f"recorded spec {str(key['feature_spec_hash'])[:12]}, the "
                            f"review's {spec.content_hash[:12]}",
                            "the engine used another feature spec than the model's",
                        )
                    )
                candles = store.read_candles(
                    inputs.record_exchange, symbol, timeframe, end_ms=seg_end
                )
                if candles.empty:
                    raise ReviewError(
                        f"bot {inputs.bot}: no {inputs.record_exchange} {symbol} {timeframe} "
                        f"candles in {inputs.market_data_dir} (is record_candles on?)"
                    )
                batch = recorded_features(candles, spec)
                compared = compare_features(feature_frame(rows), batch)
                features_compared += compared.compared
                largest = max(largest, compared.max_difference)
                divergences.extend(compared.divergences)

                inside = (candles["start_ms"] >= seg_first).to_numpy()
                seg_candles = candles.loc[inside].reset_index(drop=True)
                seg_features = batch.loc[batch.index >= seg_first]
                probabilities = None
                if model is not None:
                    probabilities = batch_probabilities(model, seg_features)
                    live = pd.Series(
                        rows["probability"].to_numpy(dtype=np.float64),
                        index=rows["candle_start_ms"].to_numpy(),
                    )
                    count, found = compare_probabilities(live, probabilities)
                    probabilities_compared += count
                    divergences.extend(found)
                source = strategy_source(session, str(key["strategy_hash"]))
                if source is None:
                    raise ReviewError(
                        f"bot {inputs.bot}: strategy {key['strategy']} version "
                        f"{str(key['strategy_hash'])[:12]} was never recorded in "
                        "strategy_sources; it cannot be re-run"
                    )
                try:
                    replay = replay_segment(
                        seg_candles,
                        seg_features,
                        probabilities,
                        source=source,
                        strategy_name=str(key["strategy"]),
                        strategy_hash=str(key["strategy_hash"]),
                        bot_config=str(key["bot_config"]),
                        symbol=symbol,
                        timeframe=timeframe,
                        model_version=model.version if model is not None else None,
                        fees=inputs.fees,
                    )
                except BacktestError as error:
                    raise ReviewError(f"bot {inputs.bot}: the replay failed: {error}") from None
                answers = live_answers(rows)
                live_side = [p for p in every_live if seg_first <= p.entry_candle_ms < seg_end]
                # the books matter to a decision only where one side was full (can_enter)
                slots = int(json.loads(str(key["bot_config"])).get("max_open_positions", 1))
                held = {}
                for start in answers:
                    counts = (live_open(live_side, start, step), replay.open_positions.get(start))
                    if counts[1] is not None and (counts[0] >= slots) != (counts[1] >= slots):
                        held[start] = (counts[0], counts[1])
                count, agree, found = compare_decisions(
                    {start: answer for start, (answer, _) in answers.items()},
                    replay.answers,
                    held,
                )
                decisions_compared += count
                agreeing += agree
                divergences.extend(found)
                paired, unmatched = match_positions(
                    live_side,
                    replay.positions,
                    live_decisions=answers,
                    backtest_decisions=replay.answers,
                )
                live_count += len(live_side)
                backtest_count += len(replay.positions)
                matches.extend(paired)
                divergences.extend(unmatched)
                for pair in paired:
                    divergences.extend(pair.divergences)
                segments.append(
                    Segment(
                        seg_first,
                        seg_last,
                        str(key["strategy"]),
                        str(key["strategy_hash"]),
                        None if key["model"] is None else str(key["model"]),
                        None if key["model_version"] is None else str(key["model_version"]),
                        len(rows),
                    )
                )
    finally:
        database.dispose()
    return ReviewReport(
        bot=inputs.bot,
        symbol=symbol,
        timeframe=timeframe,
        since_ms=inputs.since_ms if inputs.since_ms is not None else first_ms,
        until_ms=inputs.until_ms if inputs.until_ms is not None else last_ms,
        segments=tuple(segments),
        features_compared=features_compared,
        max_feature_difference=largest,
        probabilities_compared=probabilities_compared,
        decisions_compared=decisions_compared,
        decisions_agreeing=agreeing,
        positions_live=live_count,
        positions_backtest=backtest_count,
        matches=tuple(matches),
        divergences=tuple(sorted(divergences, key=lambda d: (d.time, d.kind))),
    )


def _iso(time_ms: int) -> str:
    from research.backtest.records import iso_utc

    return iso_utc(time_ms)
