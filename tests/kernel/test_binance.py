"""The Binance parsers refuse what Binance never sends, so nothing poisons candles."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradepipe.binance import (
    MalformedMessageError,
    decode_trade_message,
    parse_combined_message,
    parse_trade,
)
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


# Values each field may take in the property below: Binance's own, and what it never sends.
ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["trade", "aggTrade", "", "BTCUSDT", "61837.63", "NaN", "-1", "inf", "1e3"]),
)


# the machine's load is no reason to fail: deadline and generation speed are not the point
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    changes=st.dictionaries(st.sampled_from([*GOOD, "x"]), ODD_VALUES, max_size=3),
    dropped=st.sets(st.sampled_from(list(GOOD)), max_size=2),
)
def test_the_hot_path_decoder_accepts_only_what_the_parsers_accept_with_the_same_trade(
    changes: dict[str, object], dropped: set[str]
) -> None:
    data = {k: v for k, v in (GOOD | changes).items() if k not in dropped}
    raw = json.dumps({"stream": "btcusdt@trade", "data": data})
    decoded = decode_trade_message(raw)
    try:
        expected = parse_trade(parse_combined_message(raw)[1])
    except MalformedMessageError:
        assert decoded is None
        return
    if decoded is not None:  # the decoder may leave an odd but accepted trade to the parsers
        stream, trade, event_ms = decoded
        assert (stream, trade) == ("btcusdt@trade", expected)
        assert event_ms == (data["E"] if type(data.get("E")) is int else None)


def test_a_real_trade_message_takes_the_hot_path() -> None:
    raw = json.dumps({"stream": "btcusdt@trade", "data": GOOD})
    assert decode_trade_message(raw) == ("btcusdt@trade", parse_trade(GOOD), 1)
    for other in ("not json", '{"result": null, "id": 1}', '{"stream": "x", "data": []}'):
        assert decode_trade_message(other) is None
