"""Notification vocabulary shared by configs and the engine: what a bot may subscribe to,
and how a notifier is configured.

Kernel, not `live/`, because both the bot config (`tradepipe.botconfig`) and the settings
(`tradepipe.config`) validate against it, and neither may import the online side. Notifier
settings name their secrets (`tradepipe.secrets`); they never hold a token or a key.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

__all__ = [
    "NOTIFIER_NAME",
    "NotifierSettings",
    "NotifyCategory",
    "TelegramNotifierSettings",
    "WebhookNotifierSettings",
]

# A notifier's name as bot configs refer to it.
NOTIFIER_NAME = r"^[a-z][a-z0-9_-]{0,31}$"


class NotifyCategory(StrEnum):
    """The event categories a bot chooses to be told about."""

    ENTRIES = "entries"
    EXITS = "exits"
    ERRORS = "errors"
    MODEL_SWAPS = "model_swaps"
    STRATEGY_CHANGES = "strategy_changes"


def _check_name(value: str, what: str) -> str:
    from tradepipe.secrets import check_secret_name

    return check_secret_name(value, what=what)


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("expected an http:// or https:// URL")
    return value.rstrip("/")


class _NotifierBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout_seconds: float = Field(default=10.0, gt=0, description="per HTTP request")
    max_attempts: int = Field(default=5, ge=1, le=1000, description="deliveries tried per message")
    queue_size: int = Field(default=1000, ge=1, description="messages waiting; more are dropped")
    retry_initial_seconds: float = Field(default=1.0, gt=0, description="first retry delay")
    retry_max_seconds: float = Field(default=60.0, gt=0, description="longest retry delay")

    @model_validator(mode="after")
    def _retry_bounds(self) -> Self:
        if self.retry_initial_seconds > self.retry_max_seconds:
            raise ValueError("retry_initial_seconds must not exceed retry_max_seconds")
        return self


class TelegramNotifierSettings(_NotifierBase):
    """Telegram Bot API `sendMessage`; token and chat id are secret names."""

    type: Literal["telegram"]
    token_secret: str = Field(description="name of the secret holding the bot token")
    chat_id_secret: str = Field(description="name of the secret holding the chat id")
    base_url: str = "https://api.telegram.org"

    @field_validator("token_secret", "chat_id_secret")
    @classmethod
    def _secret_names(cls, value: str, info: ValidationInfo) -> str:
        return _check_name(value, str(info.field_name))

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return _http_url(value)


class WebhookNotifierSettings(_NotifierBase):
    """A generic JSON webhook: POST of the event as JSON, optionally signed with HMAC-SHA256
    of the body under a secret (header `X-Tradepipe-Signature: sha256=<hex>`). The URL is
    given either as `url` or, when it embeds a token (Slack, Discord), by secret name as
    `url_secret`."""

    type: Literal["webhook"]
    url: str | None = None
    url_secret: str | None = Field(default=None, description="name of a secret holding the URL")
    signing_secret: str | None = Field(default=None, description="name of the HMAC secret")

    @field_validator("signing_secret", "url_secret")
    @classmethod
    def _secret_name(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else _check_name(value, str(info.field_name))

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value)

    @model_validator(mode="after")
    def _one_url(self) -> Self:
        if (self.url is None) == (self.url_secret is None):
            raise ValueError("give the webhook's url or url_secret (the name of a secret), one")
        return self


NotifierSettings = Annotated[
    TelegramNotifierSettings | WebhookNotifierSettings, Field(discriminator="type")
]
