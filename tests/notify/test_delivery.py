"""Each notifier against a local server speaking its protocol: delivered as the protocol
says, retried with backoff on 5xx, 429 and hangs, not retried on a refusal, dropped (and
counted) when the bounded queue is full, and the hand-over never waits for the network."""

from __future__ import annotations

import asyncio
import json
import logging
import threading

import pytest

from live.notify import (
    Delivery,
    Notification,
    NotifierConfigError,
    TelegramNotifier,
    WebhookNotifier,
    build_notifier,
)
from tests.notify.servers import TelegramServer, WebhookServer
from tests.support import Aio
from tradepipe.config import load_settings
from tradepipe.notifications import NotifyCategory, WebhookNotifierSettings
from tradepipe.retries import Backoff

TOKEN = "424242:fake-telegram-token-for-delivery"
CHAT = "-100987654321"
FAST = Backoff(initial_seconds=0.01, maximum_seconds=0.05, jitter=0.5)


def note(text: str, category: NotifyCategory = NotifyCategory.ENTRIES) -> Notification:
    return Notification(category, "position_opened", text, "alpha", {"symbol": "BTCUSDT"})


def telegram(server: TelegramServer) -> TelegramNotifier:
    return TelegramNotifier(
        "tg", token=TOKEN, chat_id=CHAT, base_url=server.base_url, timeout_seconds=1.0
    )


def test_telegram_send_message_arrives_in_order_after_retries() -> None:
    async def scenario() -> None:
        async with TelegramServer(TOKEN) as server:
            delivery = Delivery(telegram(server), backoff=FAST, seed=1)
            delivery.start()
            server.faults.fail_next = 2  # two 500s, then the server is up
            for index in range(3):
                assert delivery.offer(note(f"entry {index}"))
            await Aio.eventually(lambda: delivery.counts.sent == 3, "three messages sent")
            await delivery.close(1.0)
        assert server.texts() == ["entry 0", "entry 1", "entry 2"]
        assert {m["chat_id"] for m in server.received} == {CHAT}
        assert server.raw_paths[-1] == f"/bot{TOKEN}/sendMessage"
        assert delivery.counts.retries == 2 and server.attempts == 5
        assert delivery.counts.failed == 0 and delivery.counts.dropped == 0

    Aio.run(scenario())


def test_rate_limit_is_retried_and_a_refusal_is_not() -> None:
    async def scenario() -> None:
        async with TelegramServer(TOKEN) as server:
            delivery = Delivery(telegram(server), backoff=FAST, max_attempts=5)
            delivery.start()
            server.faults.fail_next, server.faults.fail_status = 1, 429
            server.faults.retry_after = 0
            delivery.offer(note("after a 429"))
            await Aio.eventually(lambda: delivery.counts.sent == 1, "sent after the 429")
            server.faults.refuse_all = 401  # e.g. a revoked token: asking again cannot help
            delivery.offer(note("refused"))
            await Aio.eventually(lambda: delivery.counts.failed == 1, "given up")
            await delivery.close(1.0)
        assert server.texts() == ["after a 429"]
        assert server.attempts == 3  # 429, success, one 401 never repeated

    Aio.run(scenario())


def test_attempts_are_bounded_when_the_server_stays_down() -> None:
    async def scenario() -> None:
        async with WebhookServer() as server:
            delivery = Delivery(
                WebhookNotifier("hook", url=server.url, timeout_seconds=1.0),
                backoff=FAST,
                max_attempts=3,
            )
            delivery.start()
            server.faults.refuse_all = 503
            delivery.offer(note("lost"))
            await Aio.eventually(lambda: delivery.counts.failed == 1, "given up")
            await delivery.close(1.0)
        assert server.attempts == 3 and delivery.counts.retries == 2 and not server.received

    Aio.run(scenario())


def test_a_hanging_server_times_out_is_retried_and_never_holds_the_caller() -> None:
    async def scenario() -> None:
        async with WebhookServer() as server:
            notifier = WebhookNotifier("hook", url=server.url, timeout_seconds=0.1)
            delivery = Delivery(notifier, backoff=FAST, queue_size=2, max_attempts=50)
            delivery.start()
            server.faults.hang = True
            # offering never awaits: the queue takes two, the rest are dropped and counted
            accepted = [delivery.offer(note(f"n{index}")) for index in range(5)]
            assert accepted == [True, True, False, False, False]
            assert delivery.counts.dropped == 3
            await Aio.eventually(lambda: delivery.counts.retries >= 2, "timeouts retried")
            server.faults.hang = False
            server.faults.release.set()
            await Aio.eventually(lambda: delivery.counts.sent == 2, "the queued two sent")
            await delivery.close(1.0)
        # requests held past their timeout complete late on the server: a receiver sees
        # duplicates (the body's `id` tells them apart), never a lost queued message
        bodies = server.received
        assert {m["text"] for m in bodies} == {"n0", "n1"}
        assert len({m["id"] for m in bodies}) == 2

    Aio.run(scenario())


def test_close_gives_up_on_a_hanging_server() -> None:
    async def scenario() -> None:
        async with WebhookServer() as server:
            server.faults.hang = True
            notifier = WebhookNotifier("hook", url=server.url, timeout_seconds=30.0)
            delivery = Delivery(notifier, backoff=FAST)
            delivery.start()
            delivery.offer(note("never answered"))
            await Aio.eventually(lambda: server.attempts == 1, "the request in flight")
            await Aio.within(delivery.close(0.2), 3.0)  # bounded, although the server hangs
            assert delivery.counts.sent == 0

    Aio.run(scenario())


def test_webhook_body_is_the_event_and_its_signature_checks() -> None:
    key = "webhook-signing-key-for-tests-123"

    async def scenario() -> None:
        async with WebhookServer(key) as good, WebhookServer("another-key-entirely") as wrong:
            deliveries = [
                Delivery(WebhookNotifier("a", url=good.url, signing_key=key), backoff=FAST),
                Delivery(WebhookNotifier("b", url=wrong.url, signing_key=key), backoff=FAST),
            ]
            for delivery in deliveries:
                delivery.start()
                delivery.offer(note("signed", NotifyCategory.EXITS))
            await Aio.eventually(lambda: deliveries[0].counts.sent == 1, "signed delivery")
            await Aio.eventually(lambda: deliveries[1].counts.failed == 1, "bad signature")
            for delivery in deliveries:
                await delivery.close(1.0)
        [body] = good.received
        assert body["category"] == "exits" and body["bot"] == "alpha"
        assert body["text"] == "signed" and body["data"] == {"symbol": "BTCUSDT"}
        assert len(body["id"]) == 32 and body["kind"] == "position_opened"
        assert wrong.attempts == 1 and not wrong.received  # a 401 is not retried
        assert key not in good.bodies[0].decode() and key not in json.dumps(body)

    Aio.run(scenario())


def test_a_webhook_url_holding_a_token_is_a_secret_too(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    config = WebhookNotifierSettings(type="webhook", url_secret="HOOK_URL")
    monkeypatch.setenv("HOOK_URL", "not a url")
    with pytest.raises(NotifierConfigError, match="secret HOOK_URL is not an http") as caught:
        build_notifier("hook", config, load_settings())
    assert "not a url" not in str(caught.value)

    async def scenario() -> str:
        async with WebhookServer() as server:
            monkeypatch.setenv("HOOK_URL", server.url + "?token=T0KEN-in-the-url-123")
            delivery = Delivery(build_notifier("hook", config, load_settings()), backoff=FAST)
            delivery.start()
            delivery.offer(note("through a secret URL"))
            await Aio.eventually(lambda: delivery.counts.sent == 1, "delivered")
            await delivery.close(1.0)
            assert [m["text"] for m in server.received] == ["through a secret URL"]
            return server.url

    # httpx's own logger at INFO whatever an earlier test set it to (the engine quiets it)
    with caplog.at_level(logging.INFO), caplog.at_level(logging.INFO, logger="httpx"):
        url = Aio.run(scenario())
    assert "HTTP Request: POST ***" in caplog.text  # httpx logs the URL: redacted
    assert "T0KEN-in-the-url-123" not in caplog.text and url not in caplog.text


def test_an_offer_from_another_thread_is_handed_to_the_loop() -> None:
    async def scenario() -> None:
        async with WebhookServer() as server:
            delivery = Delivery(WebhookNotifier("hook", url=server.url), backoff=FAST)
            delivery.start()
            queued_on: list[int] = []
            put = delivery._put

            def recording_put(notification: Notification) -> bool:
                queued_on.append(threading.get_ident())  # asyncio queues are not thread-safe
                return put(notification)

            delivery._put = recording_put  # type: ignore[method-assign]
            await asyncio.sleep(0.05)  # the worker waits in queue.get()
            assert await asyncio.to_thread(delivery.offer, note("from a worker thread"))
            await Aio.eventually(lambda: delivery.counts.sent == 1, "delivered")
            await delivery.close(1.0)
            assert queued_on == [threading.get_ident()]  # the loop's own thread
        assert [m["text"] for m in server.received] == ["from a worker thread"]

    Aio.run(scenario())
