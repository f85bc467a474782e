"""Delivery in the background: trading hands a notification over and never waits for it.

Each notifier gets a `Delivery`: a bounded queue and one task that sends its messages in
order. `offer` is synchronous and O(1) (the trading core calls it inside a step); when the
queue is full the message is dropped and counted, because a receiver that is down for
hours must not grow the engine's memory or slow it. A failed send is retried with jittered
exponential backoff (the receiver's own `retry_after` wins when it gives one) up to
`max_attempts`; a refusal that will not change (a 4xx) is not retried. While one message is
being retried, the ones behind it wait: order is kept per notifier.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from live.notify.messages import Notification
from live.notify.protocol import DeliveryError, Notifier
from tradepipe.retries import Backoff

__all__ = ["Delivery", "DeliveryCounts"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class DeliveryCounts:
    sent: int = 0
    failed: int = 0  # given up: attempts exhausted or refused for good
    dropped: int = 0  # the queue was full
    retries: int = 0


class Delivery:
    def __init__(
        self,
        notifier: Notifier,
        *,
        queue_size: int = 1000,
        max_attempts: int = 5,
        backoff: Backoff | None = None,
        seed: int | None = None,
    ) -> None:
        if queue_size < 1 or max_attempts < 1:
            raise ValueError("queue_size and max_attempts must be at least 1")
        self.notifier = notifier
        self.max_attempts = max_attempts
        self.backoff = backoff or Backoff(initial_seconds=1.0, maximum_seconds=60.0)
        self.counts = DeliveryCounts()
        self._queue: asyncio.Queue[Notification] = asyncio.Queue(maxsize=queue_size)
        self._rng = random.Random(seed)
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def name(self) -> str:
        return self.notifier.name

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def offer(self, notification: Notification) -> bool:
        """Queue `notification` without waiting; False (and counted) if the queue is full.
        Safe from any thread: off the delivery's loop, it is handed over to the loop."""
        loop = self._loop
        if loop is not None and not _running_in(loop):
            loop.call_soon_threadsafe(self._put, notification)
            return True
        return self._put(notification)

    def _put(self, notification: Notification) -> bool:
        try:
            self._queue.put_nowait(notification)
        except asyncio.QueueFull:
            self.counts.dropped += 1
            if self.counts.dropped == 1 or self.counts.dropped % 100 == 0:
                log.warning(
                    "notifier %s: queue full, %d notifications dropped so far",
                    self.name,
                    self.counts.dropped,
                    extra={"notifier": self.name, "dropped": self.counts.dropped},
                )
            return False
        return True

    def start(self) -> None:
        if self._task is None:
            self._loop = asyncio.get_running_loop()
            self._task = self._loop.create_task(self._run(), name=f"notifier-{self.name}")

    async def close(self, timeout_seconds: float) -> None:
        """Send what is queued for up to `timeout_seconds`, then stop (the rest is lost)."""
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), timeout_seconds)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.notifier.aclose()

    async def _run(self) -> None:
        while True:
            notification = await self._queue.get()
            try:
                await self._deliver(notification)
            except Exception:  # a bug in a notifier must not end the deliveries
                self.counts.failed += 1
                log.exception("notifier %s: delivery failed unexpectedly", self.name)
            finally:
                self._queue.task_done()

    async def _deliver(self, notification: Notification) -> None:
        def log_retry(state: RetryCallState) -> None:
            self.counts.retries += 1
            log.warning(
                "%s; retry %d in %.2f s",
                state.outcome.exception() if state.outcome else None,
                state.attempt_number,
                state.upcoming_sleep,
                extra={"notifier": self.name, "notification": notification.id},
            )

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=self.backoff.wait(self._rng, hint=_retry_after, hint_capped=True),
            retry=retry_if_exception(_retryable),
            before_sleep=log_retry,
            reraise=True,
        )
        try:
            await retrying(self.notifier.send, notification)
        except DeliveryError as error:
            self.counts.failed += 1
            log.error(
                "%s; %s %s given up after %d attempt(s)",
                error,
                notification.category.value,
                notification.kind,
                retrying.statistics.get("attempt_number", 1),
                extra={"notifier": self.name, "notification": notification.id},
            )
        else:
            self.counts.sent += 1


def _retryable(error: BaseException) -> bool:
    return isinstance(error, DeliveryError) and error.retryable


def _retry_after(error: BaseException) -> float | None:
    """The receiver's own wait (Retry-After, Telegram's retry_after)."""
    return error.retry_after if isinstance(error, DeliveryError) else None


def _running_in(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
