"""The replay exchange: Binance's message format and control protocol, several clients,
the capture as recorded, REST klines for the real ccxt client, and a clean CLI stop."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from itertools import islice
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from live.feeds import BackfillError, BinanceRestBackfill
from live.replay import CaptureSource, ReplayServer, SyntheticSource, make_source
from tradepipe.binance import parse_combined_message, parse_trade
from tradepipe.candles import candles_from_trades
from tradepipe.capture import iter_capture
from tradepipe.domain import Side, Trade
from tradepipe.synthetic import SyntheticMarket

Aio = Any  # conftest.Aio (conftest modules are not importable by name)
START = 1_717_200_000_000  # 2024-06-01T00:00:00Z
HALF_HOUR = 1_800_000
REPO_ROOT = Path(__file__).resolve().parents[2]
BINANCE_TRADE_KEYS = ["e", "E", "s", "t", "p", "q", "T", "m", "M"]


def source(*symbols: str, minutes: int = 30) -> SyntheticSource:
    return SyntheticSource(symbols or ("BTCUSDT",), seed=7, start_ms=START,
                           end_ms=START + minutes * 60_000)  # fmt: skip


def test_synthetic_messages_are_binance_trades_of_the_synthetic_market_every_time() -> None:
    first = list(source("BTCUSDT", "ETHUSDT").messages(wall_start_ns=0, speed=0))
    again = list(source("BTCUSDT", "ETHUSDT").messages(wall_start_ns=123, speed=0))
    assert [m.raw for m in first] == [m.raw for m in again]  # deterministic
    for symbol in ("BTCUSDT", "ETHUSDT"):
        expected = SyntheticMarket(symbol, 7).trades(START, START + HALF_HOUR)
        mine = [m for m in first if m.stream == f"{symbol.lower()}@trade"]
        assert len(mine) == len(expected) > 100
        parsed = []
        for m in mine:
            stream, data = parse_combined_message(m.raw)
            assert stream == m.stream and list(data) == BINANCE_TRADE_KEYS
            assert re.fullmatch(r"\d+\.\d{8}", data["p"]) and re.fullmatch(r"\d+\.\d{8}", data["q"])
            assert data["E"] == data["T"] and data["M"] is True
            parsed.append(parse_trade(data))
        assert parsed == [m.trade for m in mine]
        assert [t.time_ms for t in parsed] == expected["time_ms"].tolist()
        assert [t.trade_id for t in parsed] == expected["trade_id"].tolist()
        assert [t.price for t in parsed] == expected["price"].tolist()
        assert [t.quantity for t in parsed] == expected["quantity"].tolist()
        assert [t.taker_side is Side.BUY for t in parsed] == expected["taker_buy"].tolist()
    times = [m.offset_ns for m in first]
    assert times == sorted(times)


def test_paced_synthetic_times_are_mapped_to_the_wall_clock() -> None:
    wall_start_ms = 1_900_000_000_000
    messages = list(islice(source().messages(wall_start_ms * 1_000_000, speed=60), 50))
    for m in messages:
        assert m.trade is not None
        synthetic_ms = START + m.offset_ns // 1_000_000
        assert m.trade.time_ms == wall_start_ms + (synthetic_ms - START) // 60
        assert f'"E":{m.trade.time_ms},' in m.raw and f'"T":{m.trade.time_ms},' in m.raw


async def receive(client: ClientConnection, count: int) -> list[str]:
    return [str(await asyncio.wait_for(client.recv(), 5)) for _ in range(count)]


def test_several_clients_each_get_the_streams_they_subscribed(aio: Aio) -> None:
    played = list(source("BTCUSDT", "ETHUSDT").messages(0, 0))
    btc = [m.raw for m in played if m.stream == "btcusdt@trade"]
    eth = [m.raw for m in played if m.stream == "ethusdt@trade"]

    async def scenario() -> None:
        replay = ReplayServer(source("BTCUSDT", "ETHUSDT"), speed=0, wait_for_subscribers=3)
        async with replay as server:
            url = f"{server.url}/stream?streams="
            async with (
                connect(url + "btcusdt@trade", proxy=None) as only_btc,
                connect(url + "ethusdt@trade", proxy=None) as only_eth,
                connect(server.url + "/stream", proxy=None) as both,
            ):
                await both.send(
                    '{"method":"SUBSCRIBE","params":["btcusdt@trade","ethusdt@trade"],"id":7}'
                )
                assert json.loads(await asyncio.wait_for(both.recv(), 5)) == {
                    "result": None,
                    "id": 7,
                }
                assert await receive(only_btc, len(btc)) == btc
                assert await receive(only_eth, len(eth)) == eth
                assert await receive(both, len(played)) == [m.raw for m in played]
                await aio.within(server.finished.wait())
                assert server.connections_served == 3

    aio.run(scenario())


def test_the_control_protocol_answers_as_binance_does(aio: Aio) -> None:
    async def ask(client: ClientConnection, text: str) -> Any:
        await client.send(text)
        return json.loads(await asyncio.wait_for(client.recv(), 5))

    async def scenario() -> None:
        async with ReplayServer(source(), speed=0) as server:
            async with connect(server.url + "/stream", proxy=None) as client:
                assert await ask(client, '{"method":"LIST_SUBSCRIPTIONS","id":1}') == {
                    "result": [], "id": 1
                }  # fmt: skip
                reply = await ask(
                    client, '{"method":"SUBSCRIBE","params":["nosuchcoin@trade"],"id":2}'
                )
                assert reply == {"result": None, "id": 2}  # unknown symbol: accepted, silent
                assert (await ask(client, "nonsense"))["error"]["code"] == 3
                bad = await ask(client, '{"method":"SUBSCRIBE","params":["BTC/USDT"],"id":3}')
                assert bad["id"] == 3 and bad["error"]["code"] == 2
                assert (await ask(client, '{"method":"FLY","id":4}'))["error"]["code"] == 2
                assert (await ask(client, '{"method":"SUBSCRIBE","params":[],"id":-1}'))[
                    "id"
                ] is None
                await ask(client, '{"method":"UNSUBSCRIBE","params":["nosuchcoin@trade"],"id":5}')
                assert (await ask(client, '{"method":"LIST_SUBSCRIPTIONS","id":6}'))["result"] == []
            for path, status in (("/ws/btcusdt@trade", 404), ("/stream?streams=BTC/USDT", 400)):
                with pytest.raises(InvalidStatus) as refused:
                    await connect(server.url + path, proxy=None, open_timeout=5)
                assert refused.value.response.status_code == status

    aio.run(scenario())


@pytest.mark.shared_data
def test_capture_messages_are_forwarded_exactly_as_recorded(aio: Aio, capture: Path) -> None:
    def recorded(stream: str) -> list[str]:
        prefix = f'{{"stream":"{stream}"'
        return [line.raw for line in iter_capture(capture) if line.raw.startswith(prefix)]

    book, depth = recorded("btcusdt@bookTicker"), recorded("btcusdt@depth@100ms")
    assert (len(book), len(depth)) == (28_040, 3_451)

    async def scenario() -> None:
        async with ReplayServer(CaptureSource(capture), speed=0) as server:
            url = f"{server.url}/stream?streams=btcusdt@bookTicker/btcusdt@depth@100ms"
            async with connect(url, proxy=None) as client:
                got = await receive(client, len(book) + len(depth))
                assert [m for m in got if "@bookTicker" in m[:40]] == book
                assert [m for m in got if "@depth" in m[:40]] == depth

    aio.run(scenario())


@pytest.mark.shared_data
def test_a_looped_capture_continues_the_market_forward(capture: Path) -> None:
    looped = CaptureSource(capture, loop=True)
    count = looped.message_count
    trades = [m.trade for m in islice(looped.messages(0, 0), count + 2_000) if m.trade is not None]
    first_pass = 9757
    ids = [t.trade_id or 0 for t in trades]
    assert ids[first_pass - 1] + 1 == ids[first_pass]  # no hole in the ids: no false Gap
    shift = trades[first_pass].time_ms - trades[0].time_ms
    assert shift % 1_000 == 0 and shift > trades[first_pass - 1].time_ms - trades[0].time_ms
    assert trades[first_pass].price == trades[0].price


def test_rest_klines_through_the_real_ccxt_client(aio: Aio) -> None:
    played = [m.trade for m in source(minutes=90).messages(0, 0) if m.trade is not None]

    async def scenario() -> None:
        async with ReplayServer(source(minutes=90), speed=0, wait_for_subscribers=0) as server:
            await aio.within(server.finished.wait())
            assert server.rest_url is not None
            backfill = BinanceRestBackfill(server.rest_url, timeout_seconds=5, page_limit=50)
            end = START + 90 * 60_000
            seconds = await aio.within(backfill.fetch_candles("BTCUSDT", "1s", START, end), 15)
            minutes = await aio.within(backfill.fetch_candles("BTCUSDT", "1m", START, end))
            assert seconds == list(candles_from_trades(played, "1s"))
            assert minutes == list(candles_from_trades(played, "1m"))
            assert len(seconds) > 1_000  # paged, 50 at a time
            assert server.rest.requests.count("/api/v3/klines") > 20
            with pytest.raises(BackfillError, match="binance refused to fetch klines DOGEEUR"):
                await aio.within(backfill.fetch_candles("DOGEEUR", "1s", START, end))
        with pytest.raises(BackfillError, match="cannot reach binance"):
            await aio.within(backfill.fetch_candles("BTCUSDT", "1s", START, end))

    aio.run(scenario(), timeout=30)


def test_bad_replay_input_is_refused_with_a_clear_message() -> None:
    with pytest.raises(FileNotFoundError, match="neither 'synthetic' nor an existing capture"):
        make_source("no/such/capture.txt.gz")
    with pytest.raises(ValueError, match="speed must be >= 0"):
        ReplayServer(source(), speed=-1)
    with pytest.raises(ValueError, match="like BTCUSDT"):
        SyntheticSource(["BTC/USDT"])


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_the_cli_entry_point_stops_cleanly_on_a_signal(signum: int) -> None:
    code = (
        "from live.replay import run_replay\n"
        "raise SystemExit(run_replay('synthetic', port=0, speed=1, "
        "announce=lambda line: print(line, flush=True)))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env, cwd=REPO_ROOT,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        assert re.search(r"on ws://127\.0\.0\.1:\d+, REST http://127\.0\.0\.1:\d+", banner), banner
        process.send_signal(signum)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert out.strip() == "replay stopped" and "Traceback" not in err


def test_a_trade_message_parses_back_to_its_trade() -> None:
    from live.replay import trade_message

    trade = Trade("XRPETH", 1_570_752_000_123, 0.00125, 1234.5, Side.SELL, 42)
    stream, data = parse_combined_message(trade_message(trade))
    assert stream == "xrpeth@trade" and parse_trade(data) == trade and data["m"] is True
