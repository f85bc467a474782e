"""The outbox: orders and cancels on their way to the broker, each after its intent.

Every command carries the recorder sequence number of the write that recorded it. An entry
is sent only once that write is committed (intent before action: after a crash the
database always knows every order that may exist at the venue); if that takes longer than
`entry_intent_timeout_seconds` (the database is away) the entry is not sent at all and the
engine rejects it locally. Exits and cancels wait at most `exit_intent_wait_seconds` and
then go anyway: leaving a stop-loss unsent to record it first would risk money to protect
a log line, and their deterministic ids still prevent a duplicate after a restart.

Commands of one bot go out in order (a cancel never overtakes the order it cancels); bots
do not wait for each other. A venue that cannot be reached is retried with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from live.brokers import Broker, BrokerError, BrokerOrder, BrokerUnavailableError
from live.engine.config import EngineConfig
from live.engine.recorder import Recorder

__all__ = ["BrokerCommand", "Outbox"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BrokerCommand:
    bot: str
    symbol: str
    client_order_id: str
    order: BrokerOrder | None  # None: cancel `client_order_id`
    after_seq: int = 0  # recorder write that must be durable first (0: nothing to wait for)
    entry: bool = False

    @property
    def is_cancel(self) -> bool:
        return self.order is None


class Outbox:
    def __init__(
        self,
        broker: Broker,
        recorder: Recorder,
        config: EngineConfig,
        *,
        on_not_sent: Callable[[BrokerCommand, str], None],
        on_answer: Callable[[str, str | None], None] | None = None,
    ) -> None:
        self.broker = broker
        self.recorder = recorder
        self.config = config
        self._on_not_sent = on_not_sent
        # (bot, error; None: a cancel went through) after venue calls: the circuit breaker
        self._on_answer = on_answer or (lambda bot, error: None)
        self._queues: dict[str, deque[BrokerCommand]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._rng = random.Random()
        self.sent = 0

    @property
    def pending(self) -> int:
        return sum(len(queue) for queue in self._queues.values())

    def push(self, command: BrokerCommand) -> None:
        self._queues.setdefault(command.bot, deque()).append(command)
        task = self._tasks.get(command.bot)
        if task is None or task.done():
            self._tasks[command.bot] = asyncio.get_running_loop().create_task(
                self._drain(command.bot), name=f"outbox-{command.bot}"
            )

    async def _drain(self, bot: str) -> None:
        queue = self._queues[bot]
        while queue:
            command = queue[0]
            try:
                await self._send(command)
            except asyncio.CancelledError:
                raise
            except Exception:  # never lose the queue to a bug in one command
                log.exception("outbox: %s failed", command.client_order_id)
            queue.popleft()

    async def _send(self, command: BrokerCommand) -> None:
        if command.after_seq:
            wait = (
                self.config.entry_intent_timeout_seconds
                if command.entry
                else self.config.exit_intent_wait_seconds
            )
            durable = await self.recorder.wait_durable(command.after_seq, wait)
            if not durable and command.entry:
                self._on_not_sent(command, "not sent: its intent could not be recorded")
                return
            if not durable:
                log.warning(
                    "outbox: sending %s before its intent is recorded (database away)",
                    command.client_order_id,
                    extra={"order": command.client_order_id, "bot": command.bot},
                )
        attempt = 0
        while True:
            try:
                if command.order is None:
                    await self.broker.cancel(command.symbol, command.client_order_id)
                else:
                    await self.broker.place(command.order)
                self.sent += 1
                if command.order is None:
                    self._on_answer(command.bot, None)  # a placement's answer is its report
                return
            except BrokerUnavailableError as error:
                self._on_answer(command.bot, str(error))
                attempt += 1
                delay = self.config.broker_retry.delay(attempt, self._rng)
                log.warning(
                    "outbox: broker unavailable for %s (%s), retry in %.2f s",
                    command.client_order_id,
                    error,
                    delay,
                    extra={"order": command.client_order_id, "attempt": attempt},
                )
                await asyncio.sleep(delay)
            except BrokerError as error:
                self._on_answer(command.bot, str(error))
                if command.order is not None:
                    self._on_not_sent(command, f"broker refused: {error}")
                else:
                    log.error("outbox: cancel of %s failed: %s", command.client_order_id, error)
                return

    def drop(self, bot: str) -> int:
        """Send nothing more for `bot` (another engine owns it now and sends its orders again
        from the database); the number of commands dropped."""
        task = self._tasks.pop(bot, None)
        if task is not None:
            task.cancel()
        return len(self._queues.pop(bot, ()))

    async def idle(self, timeout: float) -> bool:
        """Until every queue is empty; False if `timeout` passed first."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self.pending:
                    await asyncio.sleep(0.01)
        return not self.pending

    async def close(self) -> None:
        """Stop sending. What is left is recorded already (intent first) and is sent again
        by the reconciliation of the next start."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        self._queues.clear()
