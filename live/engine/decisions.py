"""Closed candles to decisions: batched model predictions, guarded strategy calls, entries.

Everything a step closed is decided together. Bots that share a model get one
`predict_proba` call per step for all of them, on a frame of one row per distinct feature
state (bots on the same symbol, timeframe and spec share a row; bots on other timeframes
or symbols closing in the same step add rows). A model that fails on live rows does not
stop the strategies: they see `model_probability=None` (the shipped model strategy then
stays out), and the failure is an event.

A strategy's `Exit` closes the positions it names at market (reason `strategy`): the
book cancels the take-profit and sends a market exit, which the broker fills at the next
price. Before the strategy decides, each closed candle ratchets the bot's trailing stops
(`PositionBook.on_closed_candle`, the rule backtests follow); the stop itself triggers on
trades (`on_tick`).

A decision is taken at the candle's close on the market clock (the step's time, never
before the candle's end); `EntryRequest.from_config` copies the bot's current config, the
strategy's content hash and the model version into the position for its whole life.

Bots whose model has a `challenger` in shadow (live/engine/shadow.py) then decide again,
in their shadow runs, with the challenger's probability on the same rows (one batched call
per challenger); nothing of that reaches the bot's book or the broker.

Each decision is also handed to the evidence recorder (when the engine records decisions):
the features of the candle, the model version and probability, the strategy hash, the
strategy's answer and what became of the entry, one `DecisionRecord` per bot and candle.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import pandas as pd

from live.engine.bot import BotRuntime, StrategyFailure
from live.engine.features import ClosedRow
from live.engine.model_watcher import ModelSlot
from live.engine.risk_gate import entry_refusal
from tradepipe.enums import ExitReason
from tradepipe.marketdata.decisions import DecisionKind, DecisionRecord
from tradepipe.orders import EntryRequest, InvalidOrderError, OrderPlaced
from tradepipe.strategy import Enter, Exit, ExitTargetError

if TYPE_CHECKING:
    from live.engine.core import Step, TradingCore

__all__ = ["decide"]


def decide(core: TradingCore, rows: list[ClosedRow], step: Step) -> None:
    work: list[tuple[BotRuntime, ClosedRow]] = []
    for closed in rows:
        for name in sorted(closed.stream.bots):
            bot = core.bots.get(name)
            if bot is None or bot.features is not closed.stream:
                continue
            bot.last_candle_ms = closed.candle.start_ms
            _ratchet(bot, closed, step)
            core.refresh_state(bot)
            if bot.deciding:
                work.append((bot, closed))
    if not work:
        return
    probabilities = _predict(core, work, lambda bot: bot.slot)
    for bot, closed in work:
        if not bot.deciding:  # an earlier decision of this step failed it
            continue
        core.metrics.decisions += 1
        probability = probabilities.get((id(bot.slot), id(closed.stream))) if bot.slot else None
        # One bot's failure, whatever raised it (its strategy, or its entry built from a
        # config nobody validated), is that bot's error: the others on the stream decide on.
        with core.isolated(bot, "deciding"):
            _decide_one(core, bot, closed, probability, step)
        for listener in core.decision_listeners:
            listener(bot.row.strategy, time.perf_counter_ns() - step.started_ns)
    _shadow(core, work, step)


def _shadow(core: TradingCore, work: list[tuple[BotRuntime, ClosedRow]], step: Step) -> None:
    """The challengers' decisions on the same rows, in their shadow books (shadow.py)."""
    # shadow entries are taken when the bot's own would be (the comparison stays fair)
    shadowed = [
        (bot, closed)
        for bot, closed in work
        if bot.deciding and _challenger(bot) and core.accepting_entries(bot)
    ]
    if not shadowed:
        return
    probabilities = _predict(core, shadowed, lambda bot: bot.shadow_slot)
    for bot, closed in shadowed:
        slot = bot.shadow_slot
        assert slot is not None and slot.active is not None
        probability = probabilities.get((id(slot), id(closed.stream)))
        time_ms = max(step.time_ms, closed.candle.end_ms)
        run = core.shadows.run_for(bot, slot, slot.active, time_ms)
        if run is None or probability is None:
            continue
        features = dict(zip(closed.stream.spec.feature_names, closed.row, strict=True))
        core.shadows.decide(run, closed.candle, features, probability, time_ms)


def _challenger(bot: BotRuntime) -> bool:
    slot = bot.shadow_slot
    return (
        slot is not None
        and slot.active is not None
        and bot.slot is not None
        and bot.slot.active is not None
        and slot.active.version != bot.slot.active.version
    )


def _decide_one(
    core: TradingCore, bot: BotRuntime, closed: ClosedRow, probability: float | None, step: Step
) -> None:
    features = dict(zip(closed.stream.spec.feature_names, closed.row, strict=True))
    recording = core.evidence is not None and core.evidence.records_decisions
    try:
        decision = bot.decide(closed.candle, features, probability)
    except StrategyFailure as failure:
        if recording:  # the version is the one that failed, before the bot's state moves
            _record(core, bot, closed, step, probability, None, None, failed=True)
        core.fail_bot(bot, str(failure))
        return
    entry: str | None = None
    if isinstance(decision, Exit):
        entry = _exit(core, bot, decision, closed, step)
    elif decision is not None:
        entry = _enter(core, bot, decision, closed, step)
    if recording:
        _record(core, bot, closed, step, probability, decision, entry)


def _record(
    core: TradingCore,
    bot: BotRuntime,
    closed: ClosedRow,
    step: Step,
    probability: float | None,
    decision: Enter | Exit | None,
    entry: str | None,
    *,
    failed: bool = False,
) -> None:
    assert core.evidence is not None
    slot = bot.slot
    active = slot.active if slot is not None else None
    kind = DecisionKind.FAILED if failed else _KINDS[type(decision)]
    candle = closed.candle
    spec = closed.stream.spec
    record = DecisionRecord(
        decided_ms=max(step.time_ms, candle.end_ms),
        candle_start_ms=candle.start_ms,
        symbol=candle.symbol,
        timeframe=candle.timeframe.name,
        bot=bot.name,
        strategy=bot.loaded.name,
        strategy_hash=bot.strategy_hash,
        bot_config=bot.config_json(),
        model=slot.name if slot is not None else None,
        model_version=active.version if active is not None else None,
        probability=probability,
        decision=kind,
        limit_price=decision.limit_price if isinstance(decision, Enter) else None,
        reason=(decision.reason or None) if decision is not None else None,
        entry=entry,
        feature_spec_hash=spec.content_hash,
        feature_names=tuple(spec.feature_names),
        feature_values=closed.row,
    )
    core.evidence.decision(record)


_KINDS = {type(None): DecisionKind.HOLD, Enter: DecisionKind.ENTER, Exit: DecisionKind.EXIT}


def _ratchet(bot: BotRuntime, closed: ClosedRow, step: Step) -> None:
    """Trailing stops move with the bot's closed candle, as in a backtest; a moved stop is
    saved with the book in this step's write (an empty event list still writes it)."""
    if bot.book.on_closed_candle(closed.candle):
        step.events.setdefault(bot.name, [])


def _exit(core: TradingCore, bot: BotRuntime, decision: Exit, closed: ClosedRow, step: Step) -> str:
    """Close the positions a strategy's `Exit` names, at market (exit reason `strategy`);
    what became of it: "exit N[,M]" (the positions closing), "none" (nothing open) or
    invalid (it named no open position: the bot goes to error)."""
    try:
        targets = decision.targets(bot.book.positions)
    except ExitTargetError as error:
        core.fail_bot(bot, f"{bot.loaded.path}: on_candle returned an invalid exit: {error}")
        return "invalid"
    time_ms = max(step.time_ms, closed.candle.end_ms)
    for seq in targets:
        step.add(bot.name, bot.book.close_position(seq, time_ms, ExitReason.STRATEGY))
    return "exit " + ",".join(map(str, targets)) if targets else "none"


def _predict(
    core: TradingCore,
    work: list[tuple[BotRuntime, ClosedRow]],
    slot_of: Callable[[BotRuntime], ModelSlot | None],
) -> dict[tuple[int, int], float]:
    """One predict_proba per model slot (`slot_of` each bot: its champion's, or its
    challenger's) over the distinct feature rows its bots need."""
    wanted: dict[int, tuple[ModelSlot, dict[int, ClosedRow]]] = {}
    for bot, closed in work:
        slot = slot_of(bot)
        if slot is not None and slot.active is not None:
            _, streams = wanted.setdefault(id(slot), (slot, {}))
            streams.setdefault(id(closed.stream), closed)
    found: dict[tuple[int, int], float] = {}
    for slot_id, (slot, streams) in wanted.items():
        active = slot.active
        assert active is not None
        frame = pd.DataFrame(
            [closed.row for closed in streams.values()], columns=list(active.spec.feature_names)
        )
        try:
            probabilities = active.model.predict_proba(frame)
        except Exception as error:
            core.emit(
                "model_error",
                f"{slot.ref} version {active.version} failed on live features: {error}",
                data={"model": slot.ref, "version": active.version},
            )
            continue
        core.metrics.predict_calls += 1
        core.metrics.predicted_rows += len(frame)
        for stream_id, probability in zip(streams, probabilities.tolist(), strict=True):
            found[(slot_id, stream_id)] = float(probability)
    return found


def _enter(
    core: TradingCore, bot: BotRuntime, decision: Enter, closed: ClosedRow, step: Step
) -> str:
    """Ask the book for the entry; what became of it: placed, blocked (the engine takes
    no entries now), refused (the risk limits or the book's), invalid (the bot went to
    error)."""
    if not core.accepting_entries(bot):
        core.metrics.entries_blocked += 1
        return "blocked"
    version = bot.slot.active.version if bot.slot and bot.slot.active else None
    try:
        request = EntryRequest.from_config(
            bot.config,
            limit_price=decision.limit_price,
            strategy_hash=bot.strategy_hash,
            model_version=version,
            reason=decision.reason or None,
        )
    except InvalidOrderError as error:
        core.fail_bot(bot, f"{bot.loaded.path}: on_candle asked for an invalid entry: {error}")
        return "invalid"
    time_ms = max(step.time_ms, closed.candle.end_ms)
    if entry_refusal(core, bot, request.capital, time_ms) is not None:
        core.metrics.entries_refused_risk += 1
        return "refused"
    events = bot.book.submit_entry(request, time_ms)
    placed = any(isinstance(event, OrderPlaced) for event in events)
    if placed:
        bot.entries += 1
        core.metrics.entries += 1
    step.add(bot.name, events)
    return "placed" if placed else "refused"
