import pytest

from tradepipe.timeframes import InvalidTimeframeError, parse_timeframe


@pytest.mark.parametrize(
    ("text", "seconds", "name"),
    [
        ("1s", 1, "1s"),
        ("15s", 15, "15s"),
        ("60s", 60, "1m"),
        ("5m", 300, "5m"),
        ("90m", 5400, "90m"),
        ("4h", 14_400, "4h"),
        ("24h", 86_400, "1d"),
        ("7d", 604_800, "7d"),
    ],
)
def test_parses_and_canonicalises(text: str, seconds: int, name: str) -> None:
    timeframe = parse_timeframe(text)
    assert (timeframe.seconds, timeframe.name, str(timeframe)) == (seconds, name, name)


@pytest.mark.parametrize("text", ["", "1", "m", "0m", "-1m", "1.5m", "1M", "1w", "8d", "1 m x"])
def test_rejects_with_a_message_naming_the_input(text: str) -> None:
    with pytest.raises(InvalidTimeframeError, match="timeframe"):
        parse_timeframe(text)


def test_floor_aligns_to_epoch() -> None:
    minute = parse_timeframe("1m")
    assert minute.floor_ms(1_570_752_011_620) == 1_570_752_000_000  # 2019-10-11T00:00Z
    assert minute.floor_ms(1_570_752_060_000) == 1_570_752_060_000
    assert parse_timeframe("1s").divides(minute)
    assert not parse_timeframe("7s").divides(minute)
