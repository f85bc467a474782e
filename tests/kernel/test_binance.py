"""The Binance parsers refuse what Binance never sends, so nothing poisons candles."""

from __future__ import annotations

import pytest

from tradepipe.binance import MalformedMessageError, parse_combined_message, parse_trade
from tradepipe.domain import Side

GOOD = {"e": "trade", "E": 1, "s": "BTCUSDT", "t": 7, "p": "61837.63", "q": "0.02", "T": 5,
        "m": True, "M": True}  # fmt: skip


def test_a_real_trade_message_parses() -> None:
    trade = parse_trade(GOOD)
    assert (trade.symbol, trade.time_ms, trade.price, trade.quantity, trade.trade_id) == (
        "BTCUSDT", 5, 61837.63, 0.02, 7,
    )  # fmt: skip
    assert trade.taker_side is Side.SELL  # the buyer was the maker


@pytest.mark.parametrize(
    "change",
    [{"p": "NaN"}, {"p": "-1"}, {"q": "inf"}, {"q": "0"}, {"p": "abc"}, {"T": 5.5},
     {"t": True}, {"m": "yes"}, {"e": "aggTrade"}, {"s": ""}, {"p": None}],
)  # fmt: skip
def test_implausible_values_are_malformed(change: dict[str, object]) -> None:
    with pytest.raises(MalformedMessageError):
        parse_trade(GOOD | change)


@pytest.mark.parametrize("missing", ["p", "q", "T", "t", "m", "s", "e"])
def test_missing_fields_are_named(missing: str) -> None:
    data = {key: value for key, value in GOOD.items() if key != missing}
    with pytest.raises(MalformedMessageError, match=missing):
        parse_trade(data)


@pytest.mark.parametrize("raw", ["not json", "[1, 2]", '{"stream": 1, "data": {}}', b"\xff\xfe"])
def test_combined_messages_must_be_stream_and_data(raw: str | bytes) -> None:
    with pytest.raises(MalformedMessageError):
        parse_combined_message(raw)
