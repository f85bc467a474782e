"""Models behind registry aliases: loaded at start, watched, checked, swapped or refused.

One `ModelSlot` per `models:/<name>@<alias>` that some bot uses, however many bots use it.
The `ModelWatcher` polls each alias (every `model_poll_seconds`, and at once when a bot
needs a slot nobody loaded yet). A version behind the alias that differs from the active
one is first loaded and tried in a separate process (`live.model_check`: an artifact whose
native code aborts takes only that process down, and the reason is a refusal), then loaded
here (in a worker thread: MLflow is blocking) and checked before it may trade:

- its feature spec (the registry tag; the default spec when absent) must produce every
  feature the model was trained on;
- it must predict a probability in [0, 1] for every row of a sample computed with that
  spec: the recent candles of the bots' own timeframes when there are enough, else a
  fixed synthetic random walk.

A version that passes replaces the active one in one synchronous step on the event loop
(`on_swap`), between two decisions, so no decision ever sees half a swap. A version that
fails is refused: it is remembered (not retried until the alias moves again), the refusal
is reported (`on_refused`, which records an event), and the active version keeps trading.
A shadow slot (a model's `challenger`, run beside its champion: live/engine/shadow.py) goes
through the same check; it holds only a version tagged `shadow_started_at` (promoted to
shadow) and drops its active version when the alias goes.
A slot with no usable version leaves its bots waiting, never crashing: waiting for a model
while the alias has none, in error (`refusal` names the reason) while the version behind the
alias was refused; they trade as soon as a version passes.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import pandas as pd

from live.model_check import ModelChecker
from tradepipe.domain import Candle
from tradepipe.features import FeatureSpec, IncrementalFeatures, default_spec
from tradepipe.registry import SHADOW_STARTED_TAG, LoadedModel, ModelVersionInfo
from tradepipe.timeframes import parse_timeframe
from tradepipe.worker_process import WorkerError

__all__ = [
    "ActiveModel",
    "ModelRefusedError",
    "ModelSlot",
    "ModelSource",
    "ModelWatcher",
    "check_model",
]

log = logging.getLogger(__name__)
MIN_SAMPLE_ROWS = 8
T = TypeVar("T")


class ModelSource(Protocol):
    """What the watcher needs of `tradepipe.registry.ModelRegistry`."""

    def alias(self, name: str, alias: str) -> ModelVersionInfo | None: ...

    def load(self, name: str, alias: str = ..., *, version: str | None = None) -> LoadedModel: ...


class ModelRefusedError(Exception):
    """A model version that may not trade; the message says why."""


@dataclass(frozen=True, slots=True)
class ActiveModel:
    model: LoadedModel
    spec: FeatureSpec

    @property
    def version(self) -> str:
        return self.model.version


@dataclass(eq=False)
class ModelSlot:
    name: str
    alias: str
    active: ActiveModel | None = None
    refused: dict[str, str] = field(default_factory=dict)  # version -> reason
    last_error: str | None = None
    # Why the version behind the alias may not trade, while it is refused (whether or not an
    # older version is still active).
    refusal: str | None = None
    # Why its bots may not enter: the active version breached its guard rails and there is
    # no earlier champion (live/engine/model_guard.py); cleared when another version swaps in.
    guarded: str | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # A challenger watched for shadow runs (live/engine/shadow.py): only a version promoted
    # to shadow (SHADOW_STARTED_TAG) counts, and the active one goes when the alias does.
    shadow: bool = False

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.alias}"


def check_model(model: LoadedModel, candles: Sequence[Candle]) -> FeatureSpec:
    """The feature spec `model` trades on, once it has predicted a sample with it.
    Raises ModelRefusedError naming the problem."""
    try:
        spec = model.feature_spec() or default_spec()
    except Exception as error:  # ModelLoadError, or anything a bad tag may cause
        raise ModelRefusedError(str(error)) from None
    missing = [name for name in model.feature_names if name not in spec.feature_names]
    if missing:
        raise ModelRefusedError(
            f"{model.name} version {model.version} expects features {missing[:5]} that its "
            "feature spec does not produce"
        )
    frame = sample_features(spec, candles)
    try:
        probabilities = model.predict_proba(frame)
    except Exception as error:
        raise ModelRefusedError(
            f"{model.name} version {model.version} fails on a sample: "
            f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        ) from None
    if len(probabilities) != len(frame):
        raise ModelRefusedError(f"{model.name} version {model.version}: wrong prediction count")
    return spec


def sample_features(spec: FeatureSpec, candles: Sequence[Candle]) -> pd.DataFrame:
    """Complete feature rows of `spec` over `candles`; a synthetic walk if too few."""
    rows = _ready_rows(spec, candles)
    if len(rows) < MIN_SAMPLE_ROWS:
        rows = _ready_rows(spec, synthetic_candles(spec.warmup + 2 * MIN_SAMPLE_ROWS))
    return pd.DataFrame(rows, columns=list(spec.feature_names))


def _ready_rows(spec: FeatureSpec, candles: Sequence[Candle]) -> list[tuple[float, ...]]:
    state = IncrementalFeatures(spec)
    rows = []
    for candle in candles:
        row = state.update(candle)
        if state.ready:
            rows.append(row)
    return rows[-64:]


def synthetic_candles(count: int, seed: int = 7) -> list[Candle]:
    """A fixed random walk of 1 m candles with taker volume: features are all defined."""
    rng = random.Random(seed)
    frame = parse_timeframe("1m")
    price, candles = 100.0, []
    for index in range(count):
        close = price * math.exp(rng.gauss(0.0, 0.002))
        high, low = max(price, close) * 1.001, min(price, close) * 0.999
        volume = 1.0 + rng.random()
        candles.append(
            Candle("SAMPLE", frame, index * 60_000, price, high, low, close, volume, volume / 2, 5)
        )
        price = close
    return candles


class ModelWatcher:
    """Keeps every slot's active version current; see the module docstring."""

    def __init__(
        self,
        source: Callable[[], ModelSource],
        *,
        sample: Callable[[ModelSlot], list[Candle]],
        on_swap: Callable[[ModelSlot, ActiveModel | None], None],
        on_refused: Callable[[ModelSlot, str, str], None],
        timeout_seconds: float,
        checker: ModelChecker | None = None,
    ) -> None:
        """`checker`: the check in a separate process before a version is loaded here (of
        the registry the source reads); it bounds its own time. None: versions are loaded
        here directly."""
        self._source_factory = source
        self._source: ModelSource | None = None
        self._sample = sample
        self._on_swap = on_swap
        self._on_refused = on_refused
        self._timeout = timeout_seconds
        self._checker = checker
        self._checker_start: asyncio.Future[None] | None = None
        self.slots: dict[tuple[str, str], ModelSlot] = {}

    def slot(self, name: str, alias: str, *, shadow: bool = False) -> ModelSlot:
        key = (name, alias)
        found = self.slots.get(key)
        if found is None:
            found = self.slots[key] = ModelSlot(name, alias, shadow=shadow)
            self._start_checker()
        return found

    def _start_checker(self) -> None:
        """The check process starts (seconds: it imports mlflow) as soon as a bot needs a
        model, not when the first version appears."""
        if self._checker is None or self._checker_start is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop: the first check starts it
            return
        self._checker_start = loop.run_in_executor(None, self._checker.start)
        self._checker_start.add_done_callback(_log_start_failure)

    def release_unused(self, in_use: set[tuple[str, str]]) -> None:
        for key in list(self.slots):
            if key not in in_use:
                del self.slots[key]

    async def poll(self) -> None:
        for slot in list(self.slots.values()):
            await self.poll_slot(slot)

    async def poll_slot(self, slot: ModelSlot) -> None:
        async with slot.lock:
            try:
                await self._refresh(slot)
            except WorkerError as error:  # no check process: says nothing of the model
                slot.last_error = f"model check: {error}"
                log.warning("model %s: %s", slot.ref, slot.last_error, extra={"model": slot.ref})
            except Exception as error:  # the registry unreachable, a timeout...
                slot.last_error = f"model registry: {type(error).__name__}: {error}"
                log.warning("model %s: %s", slot.ref, slot.last_error, extra={"model": slot.ref})

    async def _refresh(self, slot: ModelSlot) -> None:
        source = await self._registry()
        info = await self._call(source.alias, slot.name, slot.alias)
        if slot.shadow and (info is None or SHADOW_STARTED_TAG not in info.tags):
            slot.active, slot.last_error, slot.refusal = None, None, None
            return
        if info is None:
            slot.last_error = f"model {slot.name!r} has no version with alias {slot.alias!r}"
            slot.refusal = None
            return
        if slot.active is not None and slot.active.version == info.version:
            slot.last_error = slot.refusal = None
            return
        if info.version in slot.refused:
            slot.refusal = f"version {info.version} refused: {slot.refused[info.version]}"
            return
        if self._checker is not None:
            # A worker that cannot start says nothing of the model: that error propagates
            # (the slot's last_error) and the next poll tries again.
            result = await asyncio.to_thread(self._checker.check, slot.name, info.version)
            if not result.ok:
                self._refuse(slot, info.version, result.reason or "refused by the model check")
                return
        candles = self._sample(slot)
        try:
            model = await self._call(lambda: source.load(slot.name, version=info.version))
            spec = await self._call(check_model, model, candles)
        except Exception as error:
            self._refuse(slot, info.version, str(error) or type(error).__name__)
            return
        previous = slot.active
        slot.active = ActiveModel(model, spec)
        slot.last_error = slot.refusal = slot.guarded = None
        self._on_swap(slot, previous)

    def _refuse(self, slot: ModelSlot, version: str, reason: str) -> None:
        slot.refused[version] = reason
        slot.last_error = slot.refusal = f"version {version} refused: {reason}"
        self._on_refused(slot, version, reason)

    async def _registry(self) -> ModelSource:
        if self._source is None:
            self._source = await self._call(self._source_factory)
        return self._source

    async def _call(self, function: Callable[..., T], *args: object) -> T:
        return await asyncio.wait_for(asyncio.to_thread(function, *args), self._timeout)


def _log_start_failure(started: asyncio.Future[None]) -> None:
    if not started.cancelled() and started.exception() is not None:
        # the first check tries again and reports it; here only a trace
        log.warning("model check process: %s", started.exception())
