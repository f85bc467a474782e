"""The guarded champion: after each quality refresh, every champion this engine trades is
judged against its guard rails (`tradepipe.guard`, the rails read from the version's tag);
a breached one is rolled back at once.

What a breach does, in this order:
- the evidence is kept on the breached version in MLflow (tags `guard_breached_at` and
  `guard_evidence`, and the figures in its live-quality evaluation run);
- the alias moves back to the previous champion (`model_ops.rollback`, by "guard", the
  evidence summary as the reason: a `model_promotions` row and a `model_rolled_back` event
  in the database) and the model watcher swaps the bots at once;
- with no earlier champion, the bots on the model stop entering (state `model_guarded`,
  open positions keep their exits) until an operator promotes another version;
- a pinned champion is never moved: the breach is recorded and told, the bots trade on;
- in every case the engine event `model_guard_breached` (database, bus, notifications of
  the category model_swaps) carries the evidence.

A version is judged on the outcomes of the decisions it made since this engine made it
active (a version promoted again starts afresh), and fires at most once per activation.
The rails' lookups, the judgement and the registry calls run in worker threads, as the
quality computation does: the event loop only applies the result.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy.orm import Session

from live.engine.model_watcher import ModelSlot, ModelWatcher
from tradepipe.guard import (
    GUARD_RAILS_TAG,
    Breach,
    GuardRails,
    MaturedCalls,
    drawdown_pct,
    judge,
)
from tradepipe.orders import Event, PositionClosed
from tradepipe.quality import QualityError
from tradepipe.quality_report import VersionQuality

if TYPE_CHECKING:
    from live.engine.core import TradingCore
    from tradepipe.registry import ModelRegistry

__all__ = ["BREACHED_AT_TAG", "EVIDENCE_TAG", "GuardResult", "ModelGuard"]

log = logging.getLogger(__name__)
T = TypeVar("T")
BREACHED_AT_TAG = "guard_breached_at"
EVIDENCE_TAG = "guard_evidence"
MAX_TAG_TEXT = 5000  # MLflow's limit on a model version tag's value
Key = tuple[str, str]  # (model, version)
Reader = Callable[[Callable[[Session], T]], Awaitable[T]]


@dataclass(frozen=True)
class GuardResult:
    outcome: str  # rolled_back, no_earlier_champion, pinned, moved (someone else acted)
    rolled_back_to: str | None = None
    detail: str | None = None


class ModelGuard:
    def __init__(
        self,
        core: TradingCore,
        watcher: ModelWatcher,
        *,
        tracking_uri: str,
        database: Callable[[Callable[[Session], GuardResult]], GuardResult],
    ) -> None:
        """`database(function)` runs `function(session)` in one transaction (blocking)."""
        self.core = core
        self.watcher = watcher
        self.tracking_uri = tracking_uri
        self._database = database
        self._rails: dict[Key, GuardRails | None] = {}  # a version's tags never change
        self._since: dict[Key, int | None] = {}  # market time the version became active
        self._fired: set[Key] = set()
        self._pnl: dict[tuple[str, str], list[float]] = {}  # (bot, version) -> net PnLs
        self.breaches = 0
        self.failures = 0

    # -- inputs ----------------------------------------------------------------------------

    def on_swap(self, slot: ModelSlot) -> None:
        """A version became active: its evidence starts now, and it may fire again."""
        if slot.active is None:
            return
        key = (slot.name, slot.active.version)
        self._since[key] = self.core.clock.now()
        self._fired.discard(key)
        users = {bot.name for bot in self.core.bots.values() if bot.slot is slot}
        for bot, version in list(self._pnl):
            if version == key[1] and bot in users:
                del self._pnl[(bot, version)]

    def on_order_events(self, bot: str, symbol: str, events: Sequence[Event]) -> None:
        for event in events:
            version = event.position.request.model_version if hasattr(event, "position") else None
            if isinstance(event, PositionClosed) and version is not None:
                self._pnl.setdefault((bot, version), []).append(event.net_pnl)

    # -- the judgement ---------------------------------------------------------------------

    async def check(self, latest: Sequence[VersionQuality]) -> None:
        """Judge every active champion that has quality figures (see the module docstring)."""
        found = {(item.model, item.version): item for item in latest}
        for slot in list(self.watcher.slots.values()):
            active = slot.active
            if slot.alias != "champion" or active is None:
                continue
            key = (slot.name, active.version)
            if key in self._fired or key not in found:
                continue
            try:
                await self._check_slot(slot, key, found[key])
            except Exception:
                self.failures += 1
                log.exception("guard of %s version %s not judged", *key)

    async def _check_slot(self, slot: ModelSlot, key: Key, quality: VersionQuality) -> None:
        rails = await asyncio.to_thread(self._rails_of, key)
        if rails is None:
            return
        drawdowns = self._drawdowns(slot, key[1])
        since = self._since.get(key)
        breaches, sample = await asyncio.to_thread(_judge, rails, quality, since, drawdowns)
        if not breaches:
            return
        evidence = _evidence(key, rails, quality, breaches, sample)
        # the registry unreachable: raised, counted, and judged again at the next refresh
        result = await asyncio.to_thread(self._act, key, evidence)
        self._fired.add(key)
        self.breaches += 1
        self._apply(slot, key, evidence, result)
        if result.outcome == "rolled_back":
            await self.watcher.poll_slot(slot)  # the bots swap now, not at the next poll

    def _rails_of(self, key: Key) -> GuardRails | None:
        if key not in self._rails:
            text = self._registry().version(*key).tags.get(GUARD_RAILS_TAG)
            try:
                rails = None if text is None else GuardRails.from_tag(text)
            except QualityError as error:  # a version without usable rails is unguarded
                log.error("%s version %s: %s; it is not guarded", *key, error)
                rails = None
            self._rails[key] = rails
        return self._rails[key]

    def _drawdowns(self, slot: ModelSlot, version: str) -> dict[str, float]:
        result = {}
        for bot in self.core.bots.values():
            pnls = self._pnl.get((bot.name, version))
            if bot.slot is slot and pnls:
                config = bot.row.config
                capital = config.capital_per_trade * config.max_open_positions
                result[bot.name] = drawdown_pct(pnls, capital)
        return result

    # -- what a breach does ----------------------------------------------------------------

    def _act(self, key: Key, evidence: dict[str, object]) -> GuardResult:
        """Registry and database (blocking, in a worker thread)."""
        from tradepipe import model_ops
        from tradepipe.registry import ModelPinnedError

        name, version = key
        registry = self._registry()
        champion = registry.champion(name)
        if champion is None or champion.version != version:
            return GuardResult("moved", detail="the champion moved meanwhile")
        text = json.dumps(evidence, sort_keys=True, default=str)
        registry.tag_version(
            name,
            version,
            {BREACHED_AT_TAG: datetime.now(UTC).isoformat(), EVIDENCE_TAG: text[:MAX_TAG_TEXT]},
        )
        try:
            _log_figures(registry, key, evidence)
        except Exception:  # the figures are also in the tag and the event: roll back anyway
            log.exception("guard figures of %s version %s not logged to MLflow", *key)
        pin = model_ops.pin_of(registry.model_tags(name))
        if pin is not None:
            return GuardResult("pinned", detail=f"pinned by {pin.by}: {pin.reason}")
        reason = f"guard: {evidence['summary']}"

        def roll_back(session: Session) -> GuardResult:
            done = model_ops.rollback(registry, name, by="guard", reason=reason, session=session)
            return GuardResult("rolled_back", rolled_back_to=done.champion_after)

        try:
            return self._database(roll_back)
        except ModelPinnedError as error:  # pinned between the two calls
            return GuardResult("pinned", detail=str(error))
        except model_ops.OperatorError as error:
            return GuardResult("no_earlier_champion", detail=str(error))

    def _apply(
        self, slot: ModelSlot, key: Key, evidence: dict[str, object], result: GuardResult
    ) -> None:
        users = [bot for bot in self.core.bots.values() if bot.slot is slot]
        if result.outcome == "no_earlier_champion":
            slot.guarded = f"version {key[1]} breached its guard rails: {evidence['summary']}"
            for bot in users:
                self.core.refresh_state(bot)
        then = {
            "rolled_back": f"rolled back to version {result.rolled_back_to}",
            "no_earlier_champion": "no earlier champion: its bots stop entering",
            "pinned": "pinned: not moved",
            "moved": "the champion had moved already",
        }[result.outcome]
        self.core.emit(
            "model_guard_breached",
            f"{slot.ref} version {key[1]}: {evidence['summary']}; {then}",
            data=evidence
            | {
                "outcome": result.outcome,
                "rolled_back_to": result.rolled_back_to,
                "detail": result.detail,
                "bots": [bot.name for bot in users],
            },
        )

    def metrics(self) -> dict[str, float]:
        return {
            "guard_breaches_total": float(self.breaches),
            "guard_failures_total": float(self.failures),
        }

    def _registry(self) -> ModelRegistry:
        from tradepipe.registry import ModelRegistry

        return ModelRegistry(self.tracking_uri)


def _judge(
    rails: GuardRails, quality: VersionQuality, since: int | None, drawdowns: dict[str, float]
) -> tuple[tuple[Breach, ...], MaturedCalls]:
    """The breaches, and the matured calls the binomial rails judged."""
    calls = quality.calls if quality.calls is not None else MaturedCalls.empty()
    if since is not None:
        calls = calls.since(since)
    reference = quality.reference
    breaches = judge(
        rails,
        calls,
        None if reference is None else reference.figures,
        max_feature_psi=quality.quality.max_feature_psi,
        decisions=quality.quality.decisions,
        drawdowns=drawdowns,
    )
    return breaches, calls.latest(rails.budget_outcomes)


def _evidence(
    key: Key,
    rails: GuardRails,
    quality: VersionQuality,
    breaches: tuple[Breach, ...],
    sample: MaturedCalls,
) -> dict[str, object]:
    judged = sample.candle_start_ms
    return {
        "model": key[0],
        "version": key[1],
        "summary": "; ".join(breach.summary for breach in breaches),
        "breaches": [breach.to_dict() for breach in breaches],
        "rails": rails.model_dump(),
        "matured": quality.quality.matured,
        "decisions": quality.quality.decisions,
        "window_end_ms": quality.window_end_ms,
        # the candles of the judged matured outcomes (the latest budget_outcomes)
        "judged_outcomes": len(sample),
        "judged_from_ms": int(judged[0]) if len(judged) else None,
        "judged_to_ms": int(judged[-1]) if len(judged) else None,
    }


def _log_figures(registry: ModelRegistry, key: Key, evidence: dict[str, object]) -> None:
    """The breached figures in the version's live-quality evaluation run, at the window's
    end (seconds), beside the figures `tradepipe models quality` logs there."""
    figures: dict[str, float] = {}
    for breach in evidence["breaches"]:  # type: ignore[attr-defined]
        rail = breach["rail"]
        figures[f"guard/{rail}/live"] = float(breach["live"])
        figures[f"guard/{rail}/limit"] = float(breach["limit"])
        figures[f"guard/{rail}/outcomes"] = float(breach["outcomes"])
        if breach["p_value"] is not None:
            figures[f"guard/{rail}/p_value"] = float(breach["p_value"])
    step = int(evidence["window_end_ms"]) // 1000  # type: ignore[call-overload]
    summary = str(evidence["summary"])[:MAX_TAG_TEXT]
    registry.log_evaluation(*key, {step: figures}, params={"guard_breach": summary})
