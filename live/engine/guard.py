"""A time budget for strategy calls that also stops a call that never returns.

The engine runs every bot's decision in its one event-loop thread, so a strategy stuck in a
loop would stop every bot. Versions are smoke-run before they may trade
(`tradepipe.strategy.preflight`), but a loop can depend on the live market. So each guarded
call is watched by one thread per engine: when a call is over its budget, the watcher raises
`OverBudget` inside the engine's thread (`PyThreadState_SetAsyncExc`, which takes effect at
the next Python bytecode: pure-Python loops stop; a call blocked inside C code stops when it
returns to Python). The guarded call turns it into a failure of that bot alone.

The hand-off is exact: the watcher fires only while holding the lock and only if the same
call is still running; the call, on its way out, takes the lock before it is done, and if
the watcher fired meanwhile it withdraws the pending exception and raises it itself, so an
`OverBudget` can never surface in the engine's own code after the call ended.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["CallGuard", "OverBudget"]

T = TypeVar("T")
# The same C function twice: with an exception class to raise one, with NULL to withdraw it.
_API = ("PyThreadState_SetAsyncExc", ctypes.pythonapi)
_set_async_exc = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.py_object)(_API)
_clear_async_exc = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p)(_API)


class OverBudget(BaseException):
    """A guarded call ran past its budget. A BaseException, so that a strategy's own
    `except Exception` does not swallow it."""


class _Call:
    __slots__ = ("deadline", "fired", "thread_id")

    def __init__(self, thread_id: int, deadline: float) -> None:
        self.thread_id = thread_id
        self.deadline = deadline
        self.fired = 0  # how many times OverBudget was raised into it


class CallGuard:
    """Runs calls under a budget; one watcher thread, started on first use."""

    # A call that catches OverBudget (a bare `except:`) is interrupted again this often.
    REPEAT_SECONDS = 0.2

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._current: _Call | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        self.interrupted = 0  # calls stopped by the watcher (metrics, tests)

    def call(self, budget_seconds: float, function: Callable[[], T]) -> T:
        """`function()`, or OverBudget if it ran past `budget_seconds` (checked on return
        too, for a call blocked in C code that the watcher could not stop)."""
        started = time.monotonic()
        this = _Call(threading.get_ident(), started + budget_seconds)
        with self._lock:
            self._ensure_watcher()
            self._current = this
            self._wake.notify()
        try:
            result = function()
        finally:
            with self._lock:
                self._current = None
                fired = this.fired
            if fired:
                _clear_async_exc(this.thread_id, None)  # withdraw one not yet delivered
        if fired or time.monotonic() - started > budget_seconds:
            raise OverBudget
        return result

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._wake.notify()

    def _ensure_watcher(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._closed = False
            self._thread = threading.Thread(
                target=self._watch, name="tradepipe-call-guard", daemon=True
            )
            self._thread.start()

    def _watch(self) -> None:
        with self._lock:
            while not self._closed:
                current = self._current
                if current is None:
                    self._wake.wait()
                    continue
                late = current.deadline - time.monotonic()
                if late > 0:
                    self._wake.wait(late)
                    continue
                if self._current is current:
                    _set_async_exc(current.thread_id, OverBudget)
                    current.fired += 1
                    self.interrupted += current.fired == 1
                    current.deadline = time.monotonic() + self.REPEAT_SECONDS
