"""Candle timeframes: the one parser of interval names such as "1s", "15m", "4h" and "1d".

Intervals are aligned to the Unix epoch (UTC): a candle of N seconds starts at a multiple of
N seconds since 1970-01-01T00:00:00Z, as exchanges align theirs for every unit up to a day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

UNIT_SECONDS = {"s": 1, "m": 60, "h": 3_600, "d": 86_400}
_PATTERN = re.compile(r"^([1-9][0-9]*)([smhd])$")
MAX_SECONDS = 7 * 86_400


class InvalidTimeframeError(ValueError):
    """A timeframe name that is not a positive count of s, m, h or d."""


@dataclass(frozen=True, slots=True, order=True)
class Timeframe:
    """A candle interval; `name` is canonical ("60s" becomes "1m")."""

    seconds: int
    name: str

    @property
    def milliseconds(self) -> int:
        return self.seconds * 1_000

    def floor_ms(self, time_ms: int) -> int:
        """Start (ms since epoch) of the interval that contains `time_ms`."""
        return time_ms - time_ms % self.milliseconds

    def divides(self, other: Timeframe) -> bool:
        """True when candles of `other` are built from whole candles of this timeframe."""
        return other.seconds % self.seconds == 0

    def __str__(self) -> str:
        return self.name


def _canonical_name(seconds: int) -> str:
    for unit in ("d", "h", "m", "s"):
        if seconds % UNIT_SECONDS[unit] == 0:
            return f"{seconds // UNIT_SECONDS[unit]}{unit}"
    raise AssertionError("every whole number of seconds has a name")  # pragma: no cover


def parse_timeframe(text: str | Timeframe) -> Timeframe:
    """Parse "1s", "5m", "1h", "1d"...; raise InvalidTimeframeError naming the input."""
    if isinstance(text, Timeframe):
        return text
    match = _PATTERN.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise InvalidTimeframeError(
            f"unknown timeframe {text!r}: use a count and a unit s, m, h or d, e.g. 1s, 5m, 1h, 1d"
        )
    seconds = int(match.group(1)) * UNIT_SECONDS[match.group(2)]
    if seconds > MAX_SECONDS:
        raise InvalidTimeframeError(f"timeframe {text!r} is longer than the longest supported, 7d")
    return Timeframe(seconds=seconds, name=_canonical_name(seconds))


ONE_SECOND = parse_timeframe("1s")
