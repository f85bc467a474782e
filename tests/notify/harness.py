"""A real engine with real notifiers pointed at the local servers of `servers.py`: the
settings they come from (secrets by name, values in the environment), and fake secret
values distinctive enough that a scan for them cannot match by accident."""

from __future__ import annotations

from typing import Any

import pytest

from live.notify import NotificationHub, build_hub
from tests.notify.servers import TelegramServer, WebhookServer
from tradepipe.config import Settings, load_settings

TELEGRAM_TOKEN = "7777777:FAKEtelegramTOKENzz9-scan-me-if-you-can"
TELEGRAM_CHAT = "-1009988776655"
WEBHOOK_KEY = "whsec_FAKEwebhookSIGNINGkeyQ8-scan-me"
SECRETS = {
    "TEST_TG_TOKEN": TELEGRAM_TOKEN,
    "TEST_TG_CHAT": TELEGRAM_CHAT,
    "TEST_HOOK_KEY": WEBHOOK_KEY,
}
# Deliveries fast enough for tests: short timeouts and backoff, many attempts.
FAST_DELIVERY = {
    "timeout_seconds": 0.5,
    "retry_initial_seconds": 0.01,
    "retry_max_seconds": 0.1,
    "max_attempts": 200,
}


def set_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)


def notifier_settings(
    telegram: TelegramServer, webhook: WebhookServer, **overrides: Any
) -> Settings:
    """Settings with notifiers `tg` (Telegram) and `hook` (signed webhook)."""
    return load_settings(
        notifiers={
            "tg": {
                "type": "telegram",
                "token_secret": "TEST_TG_TOKEN",
                "chat_id_secret": "TEST_TG_CHAT",
                "base_url": telegram.base_url,
                **FAST_DELIVERY,
            },
            "hook": {
                "type": "webhook",
                "url": webhook.url,
                "signing_secret": "TEST_HOOK_KEY",
                **FAST_DELIVERY,
            },
        },
        **overrides,
    )


def hub_for(telegram: TelegramServer, webhook: WebhookServer) -> NotificationHub:
    return build_hub(notifier_settings(telegram, webhook))


def servers() -> tuple[TelegramServer, WebhookServer]:
    return TelegramServer(TELEGRAM_TOKEN), WebhookServer(WEBHOOK_KEY)
