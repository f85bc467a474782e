"""The engine's background loops: asyncio tasks named after the engine, each periodic one
running its action every so many seconds and going on when the action fails; all of them
cancelled together at the stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["Loops", "every"]

log = logging.getLogger(__name__)


async def every(seconds: float, action: Callable[[], object]) -> None:
    """Run `action` (a function or a coroutine function) every `seconds`, forever."""
    while True:
        await asyncio.sleep(seconds)
        try:
            result = action()
            if asyncio.iscoroutine(result):
                await result
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("engine loop %s failed; it goes on", getattr(action, "__name__", action))


class Loops:
    def __init__(self, engine_id: str) -> None:
        self.engine_id = engine_id
        self._tasks: list[asyncio.Task[None]] = []

    def spawn(self, loop: Coroutine[Any, Any, None], name: str) -> None:
        self._tasks.append(asyncio.create_task(loop, name=f"{name}-{self.engine_id}"))

    def every(self, name: str, seconds: float, action: Callable[[], object]) -> None:
        self.spawn(every(seconds, action), name)

    async def cancel(self) -> None:
        """Cancel every loop and wait until each has ended (whatever it ended with)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
