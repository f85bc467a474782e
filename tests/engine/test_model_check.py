"""The model check in its own process (live/model_check.py) on versions of a real MLflow
store: a good version passes; a truncated LightGBM file (which aborts the process that
loads it), garbage and an empty file are refused with their reason; a worker killed or
stuck is a refusal too, and the next check starts a new worker that works; a worker that
cannot start at all is no refusal (the model watcher tries again)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from live.engine.model_watcher import ModelSlot, ModelWatcher
from live.model_check import ModelChecker
from tests.engine.helpers import Aio
from tests.engine.model_store import ModelStore
from tradepipe.features import FeatureSpec
from tradepipe.worker_process import WorkerProcess

SMALL = FeatureSpec(
    name="small_check",
    return_horizons=(1, 3),
    sma_windows=(5,),
    ema_spans=(12,),
    volatility_windows=(10,),
    rsi_periods=(14,),
    momentum_periods=(10,),
    volume_windows=(20,),
    taker_flow_windows=(10,),
)


@pytest.fixture(scope="module")
def checker(model_store: ModelStore) -> Iterator[ModelChecker]:
    found = ModelChecker(model_store.tracking_uri, timeout_seconds=30)
    try:
        yield found
    finally:
        found.close()
    assert found.worker_pid is None


def test_a_good_version_passes_on_the_width_it_declares(
    checker: ModelChecker, model_store: ModelStore
) -> None:
    default = model_store.register("check_ok")
    small = model_store.register("check_ok", spec=SMALL, seed=3)
    for version in (default, small):
        result = checker.check("check_ok", version)
        assert result.ok and result.reason is None, result
        assert (result.name, result.version) == ("check_ok", version)
    assert checker.worker_pid is not None  # one worker, reused


def test_a_truncated_file_aborts_only_the_worker_and_is_refused_naming_why(
    checker: ModelChecker, model_store: ModelStore
) -> None:
    broken = model_store.register("check_truncated", damage="truncate")
    good = model_store.register("check_truncated", seed=2)
    before = checker.worker_pid
    result = checker.check("check_truncated", broken)
    assert not result.ok and result.reason is not None
    assert "killed by SIGABRT" in result.reason
    assert "LightGBM" in result.reason  # its own last words are quoted
    assert result.reason.isprintable()
    assert checker.check("check_truncated", good).ok  # a new worker
    assert checker.worker_pid not in (None, before)


@pytest.mark.parametrize("damage", ["garbage", "empty"])
def test_a_garbage_or_empty_file_is_refused_with_the_load_error(
    checker: ModelChecker, model_store: ModelStore, damage: str
) -> None:
    name = f"check_{damage}"
    broken = model_store.register(name, damage=damage)  # type: ignore[arg-type]
    result = checker.check(name, broken)
    assert not result.ok and result.reason is not None
    assert f"{name} version {broken}: cannot load" in result.reason
    assert "LightGBMError" in result.reason


def test_an_unknown_version_is_refused(checker: ModelChecker, model_store: ModelStore) -> None:
    model_store.register("check_unknown")
    result = checker.check("check_unknown", "99")
    assert not result.ok and "no registered model check_unknown version 99" in str(result.reason)


@pytest.mark.parametrize("signal_number", [signal.SIGKILL, signal.SIGSEGV])
def test_a_worker_killed_is_a_refusal_then_the_next_check_works(
    checker: ModelChecker, model_store: ModelStore, signal_number: signal.Signals
) -> None:
    name = f"check_killed_{signal_number.name.lower()}"
    version = model_store.register(name)
    checker.start()
    pid = checker.worker_pid
    assert pid is not None
    os.kill(pid, signal_number)
    result = checker.check(name, version)
    assert not result.ok and f"killed by {signal_number.name}" in str(result.reason)
    assert checker.check(name, version).ok


def test_a_worker_that_does_not_answer_is_killed_at_the_timeout(
    model_store: ModelStore,
) -> None:
    version = model_store.register("check_stuck")
    stuck = ModelChecker(model_store.tracking_uri, timeout_seconds=0.5)
    try:
        stuck.start()
        pid = stuck.worker_pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # alive, answering nothing
        result = stuck.check("check_stuck", version)
        assert not result.ok
        assert "did not finish within 0.5 s: the model check process was killed" in str(
            result.reason
        )
        assert stuck.worker_pid is None
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    finally:
        stuck.close()


def test_a_timeout_must_be_positive(model_store: ModelStore) -> None:
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="timeout"):
            ModelChecker(model_store.tracking_uri, timeout_seconds=bad)


def test_a_check_process_that_cannot_start_is_no_refusal_of_the_model(
    aio: Aio, model_store: ModelStore
) -> None:
    version = model_store.register("check_no_worker")
    broken_worker = WorkerProcess("live.no_such_module", description="the model check process")
    checker = ModelChecker(model_store.tracking_uri, worker=broken_worker)
    refusals: list[str] = []
    watcher = ModelWatcher(
        lambda: model_store.registry,
        sample=lambda slot: [],
        on_swap=lambda slot, previous: None,
        on_refused=lambda slot, version, reason: refusals.append(version),
        timeout_seconds=30,
        checker=checker,
    )

    async def scenario() -> ModelSlot:
        slot = watcher.slot("check_no_worker", "champion")
        await watcher.poll_slot(slot)
        return slot

    try:
        slot = aio.run(scenario(), timeout=60)
    finally:
        checker.close()
    assert refusals == [] and slot.refused == {} and slot.refusal is None
    assert slot.active is None  # nor loaded unchecked
    assert str(slot.last_error).startswith("model check: the model check process did not start")
    assert version not in slot.refused  # tried again at the next poll
