"""One bot's review: the evidence read, each segment replayed, everything compared."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from research.backtest import BacktestError
from research.review.compare import (
    Divergence,
    compare_decisions,
    compare_features,
    compare_probabilities,
)
from research.review.live_side import SegmentRows, live_answers, live_positions, segments_of
from research.review.positions import PositionMatch, ReviewedPosition, match_positions
from research.review.replay import SegmentReplay, batch_probabilities, replay_segment
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


@dataclass
class _Tally:
    """What the segments of one review add up to."""

    divergences: list[Divergence] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    matches: list[PositionMatch] = field(default_factory=list)
    positions_live: int = 0
    positions_backtest: int = 0
    features_compared: int = 0
    max_feature_difference: float = 0.0
    probabilities_compared: int = 0
    decisions_compared: int = 0
    decisions_agreeing: int = 0


class _Models:
    """The versions the segments name, each loaded once; the registry is opened for the
    first model segment only."""

    def __init__(self, tracking_uri: str) -> None:
        self._tracking_uri = tracking_uri
        self._registry: ModelRegistry | None = None
        self._loaded: dict[tuple[str, str], LoadedModel] = {}

    def of(self, key: dict[str, object]) -> LoadedModel | None:
        if key["model"] is None or key["model_version"] is None:
            return None
        ref = (str(key["model"]), str(key["model_version"]))
        if ref not in self._loaded:
            self._registry = self._registry or ModelRegistry(self._tracking_uri)
            self._loaded[ref] = self._registry.load(ref[0], version=ref[1])
        return self._loaded[ref]


@dataclass(frozen=True)
class _Bounds:
    step: int  # the timeframe's milliseconds
    first: int  # the segment's first and last decided candle
    last: int
    end: int  # where the next segment (or the range) starts


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
    store, tally = MarketDataStore(inputs.market_data_dir), _Tally()
    models = _Models(inputs.mlflow_tracking_uri)
    symbol = str(decisions["symbol"].iloc[0])
    timeframe = str(decisions["timeframe"].iloc[0])
    database = create_engine_for(inputs.database_url)
    try:
        with session_scope(database) as session:
            every_live = live_positions(session, inputs.bot, _placed_entries(decisions))
            parts = segments_of(decisions)
            for number, part in enumerate(parts):
                following = parts[number + 1].rows if number + 1 < len(parts) else None
                symbol, timeframe = str(part.key["symbol"]), str(part.key["timeframe"])
                bounds = _bounds(part.rows, following, timeframe, inputs.until_ms)
                _review_segment(inputs, session, store, models, part, bounds, every_live, tally)
    finally:
        database.dispose()
    first_ms = int(decisions["candle_start_ms"].iloc[0])
    last_ms = int(decisions["candle_start_ms"].iloc[-1])
    return ReviewReport(
        bot=inputs.bot,
        symbol=symbol,
        timeframe=timeframe,
        since_ms=inputs.since_ms if inputs.since_ms is not None else first_ms,
        until_ms=inputs.until_ms if inputs.until_ms is not None else last_ms,
        segments=tuple(tally.segments),
        features_compared=tally.features_compared,
        max_feature_difference=tally.max_feature_difference,
        probabilities_compared=tally.probabilities_compared,
        decisions_compared=tally.decisions_compared,
        decisions_agreeing=tally.decisions_agreeing,
        positions_live=tally.positions_live,
        positions_backtest=tally.positions_backtest,
        matches=tuple(tally.matches),
        divergences=tuple(sorted(tally.divergences, key=lambda d: (d.time, d.kind))),
    )


def _placed_entries(decisions: pd.DataFrame) -> list[tuple[int, int]]:
    """(decided ms, candle start ms) of every decision whose entry was placed."""
    columns = (decisions["decided_ms"], decisions["candle_start_ms"], decisions["entry"])
    return [(int(d), int(c)) for d, c, e in zip(*columns, strict=True) if e == "placed"]


def _bounds(
    rows: pd.DataFrame, following: pd.DataFrame | None, timeframe: str, until_ms: int | None
) -> _Bounds:
    step = parse_timeframe(timeframe).milliseconds
    first = int(rows["candle_start_ms"].iloc[0])
    last = int(rows["candle_start_ms"].iloc[-1])
    if following is not None:
        end = int(following["candle_start_ms"].iloc[0])
    else:
        end = until_ms if until_ms is not None else last + step
    return _Bounds(step, first, last, end)


def _review_segment(
    inputs: ReviewInputs,
    session: Session,
    store: MarketDataStore,
    models: _Models,
    part: SegmentRows,
    bounds: _Bounds,
    every_live: list[ReviewedPosition],
    tally: _Tally,
) -> None:
    """Replay one segment (one strategy, model and config) and add what it shows to `tally`."""
    key, rows = part.key, part.rows
    symbol, timeframe = str(key["symbol"]), str(key["timeframe"])
    model = models.of(key)
    spec = (model.feature_spec() if model is not None else None) or default_spec()
    if spec.content_hash != key["feature_spec_hash"]:
        tally.divergences.append(
            Divergence(
                "feature_spec",
                _iso(bounds.first),
                f"recorded spec {str(key['feature_spec_hash'])[:12]}, the "
                f"review's {spec.content_hash[:12]}",
                "the engine used another feature spec than the model's",
            )
        )
    candles = store.read_candles(inputs.record_exchange, symbol, timeframe, end_ms=bounds.end)
    if candles.empty:
        raise ReviewError(
            f"bot {inputs.bot}: no {inputs.record_exchange} {symbol} {timeframe} "
            f"candles in {inputs.market_data_dir} (is record_candles on?)"
        )
    batch = recorded_features(candles, spec)
    compared = compare_features(feature_frame(rows), batch)
    tally.features_compared += compared.compared
    tally.max_feature_difference = max(tally.max_feature_difference, compared.max_difference)
    tally.divergences.extend(compared.divergences)
    seg_candles = candles.loc[(candles["start_ms"] >= bounds.first).to_numpy()]
    seg_features = batch.loc[batch.index >= bounds.first]
    probabilities = None
    if model is not None:
        probabilities = batch_probabilities(model, seg_features)
        live = pd.Series(
            rows["probability"].to_numpy(dtype=np.float64),
            index=rows["candle_start_ms"].to_numpy(),
        )
        count, found = compare_probabilities(live, probabilities)
        tally.probabilities_compared += count
        tally.divergences.extend(found)
    replay = _replay(
        inputs, session, key, seg_candles.reset_index(drop=True), seg_features, probabilities, model
    )
    live_side = [p for p in every_live if bounds.first <= p.entry_candle_ms < bounds.end]
    _compare_books(key, rows, bounds.step, live_side, replay, tally)
    tally.segments.append(
        Segment(
            bounds.first,
            bounds.last,
            str(key["strategy"]),
            str(key["strategy_hash"]),
            None if key["model"] is None else str(key["model"]),
            None if key["model_version"] is None else str(key["model_version"]),
            len(rows),
        )
    )


def _replay(
    inputs: ReviewInputs,
    session: Session,
    key: dict[str, object],
    candles: pd.DataFrame,
    features: pd.DataFrame,
    probabilities: pd.Series | None,
    model: LoadedModel | None,
) -> SegmentReplay:
    """The segment through the backtester with the very strategy version the engine ran."""
    source = strategy_source(session, str(key["strategy_hash"]))
    if source is None:
        raise ReviewError(
            f"bot {inputs.bot}: strategy {key['strategy']} version "
            f"{str(key['strategy_hash'])[:12]} was never recorded in "
            "strategy_sources; it cannot be re-run"
        )
    try:
        return replay_segment(
            candles,
            features,
            probabilities,
            source=source,
            strategy_name=str(key["strategy"]),
            strategy_hash=str(key["strategy_hash"]),
            bot_config=str(key["bot_config"]),
            symbol=str(key["symbol"]),
            timeframe=str(key["timeframe"]),
            model_version=model.version if model is not None else None,
            fees=inputs.fees,
        )
    except BacktestError as error:
        raise ReviewError(f"bot {inputs.bot}: the replay failed: {error}") from None


def _compare_books(
    key: dict[str, object],
    rows: pd.DataFrame,
    step: int,
    live_side: list[ReviewedPosition],
    replay: SegmentReplay,
    tally: _Tally,
) -> None:
    """The segment's decisions and positions, live against the replay."""
    answers = live_answers(rows)
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
    tally.decisions_compared += count
    tally.decisions_agreeing += agree
    tally.divergences.extend(found)
    paired, unmatched = match_positions(
        live_side,
        replay.positions,
        live_decisions=answers,
        backtest_decisions=replay.answers,
    )
    tally.positions_live += len(live_side)
    tally.positions_backtest += len(replay.positions)
    tally.matches.extend(paired)
    tally.divergences.extend(unmatched)
    for pair in paired:
        tally.divergences.extend(pair.divergences)


def _iso(time_ms: int) -> str:
    from research.backtest.records import iso_utc

    return iso_utc(time_ms)
