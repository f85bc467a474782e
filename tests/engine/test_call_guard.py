"""The call guard: a call over its budget is stopped inside the engine's thread, and a
call that ends never leaves an interruption behind."""

from __future__ import annotations

import time

import pytest

from live.engine.guard import CallGuard, OverBudget


def spin(seconds: float) -> int:
    """Busy Python bytecode for `seconds` (interruptible at any instruction)."""
    end = time.monotonic() + seconds
    rounds = 0
    while time.monotonic() < end:
        rounds += 1
    return rounds


def forever() -> None:
    total = 0
    while True:
        total += 1


def test_a_call_within_its_budget_returns_its_result() -> None:
    guard = CallGuard()
    try:
        assert guard.call(1.0, lambda: 41 + 1) == 42
        assert guard.interrupted == 0
    finally:
        guard.close()


def test_an_endless_loop_is_stopped_and_the_guard_goes_on() -> None:
    guard = CallGuard()
    try:
        with pytest.raises(OverBudget):
            guard.call(0.05, forever)
        assert guard.interrupted == 1
        assert guard.call(1.0, lambda: "next") == "next"
    finally:
        guard.close()


def test_except_exception_in_the_strategy_does_not_swallow_the_stop() -> None:
    def stubborn() -> None:
        while True:
            try:
                spin(0.01)
            except Exception:  # what strategies write; OverBudget is not an Exception
                continue

    guard = CallGuard()
    try:
        with pytest.raises(OverBudget):
            guard.call(0.05, stubborn)
    finally:
        guard.close()


def test_a_call_blocked_in_c_code_fails_when_it_returns() -> None:
    guard = CallGuard()
    try:
        with pytest.raises(OverBudget):
            guard.call(0.01, lambda: time.sleep(0.1))
    finally:
        guard.close()


def test_calls_ending_at_their_deadline_leave_no_interruption_behind() -> None:
    guard = CallGuard()
    outcomes = {"returned": 0, "stopped": 0}
    try:
        for _ in range(300):
            try:
                guard.call(0.002, lambda: spin(0.002))
                outcomes["returned"] += 1
            except OverBudget:
                outcomes["stopped"] += 1
            spin(0.001)  # an interruption left pending would land here, outside the call
    finally:
        guard.close()
    assert sum(outcomes.values()) == 300
