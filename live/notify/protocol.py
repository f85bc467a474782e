"""The `Notifier` seam: one way to hand a notification to the outside world.

A notifier sends one message and says how it went; it never retries, queues or sleeps.
Retrying, backoff, the bounded queue and the background task live in `delivery`, once for
every notifier, so Telegram and the webhook differ only in what they put on the wire.
Failures are `DeliveryError`s: `retryable` (a 5xx, a 429, a timeout, a refused connection)
or not (a 4xx the receiver will answer the same way every time). Their messages name the
notifier and the status, never the URL: a Telegram URL contains the bot token.
"""

from __future__ import annotations

from typing import Protocol

from live.notify.messages import Notification

__all__ = ["DeliveryError", "Notifier"]


class DeliveryError(Exception):
    """A notification was not delivered; `retry_after` is the receiver's own hint."""

    def __init__(
        self, message: str, *, retryable: bool = True, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class Notifier(Protocol):
    """Sends one notification; raises DeliveryError when it was not accepted."""

    @property
    def name(self) -> str: ...

    async def send(self, notification: Notification) -> None: ...

    async def aclose(self) -> None: ...
