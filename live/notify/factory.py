"""Notifiers from the settings: the one place their secrets are resolved.

`build_hub(settings)` turns the `notifiers` setting (name -> type, URL, secret names) into
working notifiers behind a `NotificationHub`. Secrets are resolved here, at engine start,
so a missing token stops the engine with a message naming the notifier and the secret
instead of failing silently at the first trade.
"""

from __future__ import annotations

from collections.abc import Mapping

from live.notify.delivery import Delivery
from live.notify.hub import NotificationHub
from live.notify.protocol import Notifier
from live.notify.telegram import TelegramNotifier
from live.notify.webhook import WebhookNotifier
from tradepipe.config import ConfigError, Settings
from tradepipe.notifications import (
    NotifierSettings,
    TelegramNotifierSettings,
    WebhookNotifierSettings,
)
from tradepipe.retries import Backoff
from tradepipe.secrets import resolve_secret

__all__ = ["NotifierConfigError", "build_hub", "build_notifier"]


class NotifierConfigError(ConfigError):
    """A notifier that cannot be built; the message names it and what is missing."""


def build_notifier(name: str, config: NotifierSettings, settings: Settings) -> Notifier:
    def secret(secret_name: str) -> str:
        try:
            return resolve_secret(secret_name, settings)
        except ConfigError as error:
            raise NotifierConfigError(f"notifier {name}: {error}") from None

    if isinstance(config, TelegramNotifierSettings):
        return TelegramNotifier(
            name,
            token=secret(config.token_secret),
            chat_id=secret(config.chat_id_secret),
            base_url=config.base_url,
            timeout_seconds=config.timeout_seconds,
        )
    if isinstance(config, WebhookNotifierSettings):
        key = None if config.signing_secret is None else secret(config.signing_secret)
        if config.url is not None:
            url = config.url
        else:
            assert config.url_secret is not None  # the settings allow exactly one
            url = secret(config.url_secret)
            if not url.startswith(("http://", "https://")):  # never show the value
                raise NotifierConfigError(
                    f"notifier {name}: secret {config.url_secret} is not an http(s) URL"
                )
        return WebhookNotifier(
            name, url=url, signing_key=key, timeout_seconds=config.timeout_seconds
        )
    raise NotifierConfigError(f"notifier {name}: unknown type {type(config).__name__}")


def build_hub(
    settings: Settings, notifiers: Mapping[str, NotifierSettings] | None = None
) -> NotificationHub:
    """A hub over every configured notifier (`notifiers` defaults to the settings')."""
    configured = settings.notifiers if notifiers is None else notifiers
    deliveries = []
    for name, config in sorted(configured.items()):
        deliveries.append(
            Delivery(
                build_notifier(name, config, settings),
                queue_size=config.queue_size,
                max_attempts=config.max_attempts,
                backoff=Backoff(
                    initial_seconds=config.retry_initial_seconds,
                    maximum_seconds=config.retry_max_seconds,
                ),
            )
        )
    return NotificationHub(deliveries)
