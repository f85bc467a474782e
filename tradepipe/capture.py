"""Binance WebSocket capture files: one message a line, `<receive time ns> <raw JSON>`.

Read by the research capture source and by the live replay server, so both see the same
messages. Files may be gzip-compressed (by the `.gz` suffix).
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from tradepipe.binance import MalformedMessageError, parse_combined_message, parse_trade
from tradepipe.domain import Trade


class CaptureFormatError(ValueError):
    """A line that is not `<integer ns> <JSON>`; names the file and line number."""


@dataclass(frozen=True, slots=True)
class CaptureLine:
    line_number: int
    receive_ns: int
    raw: str


def open_text(path: Path) -> TextIO:
    """Open a text file, transparently decompressing `.gz`."""
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open("r", encoding="utf-8")


def iter_capture(path: Path) -> Iterator[CaptureLine]:
    """Every non-empty line of a capture file, in file order."""
    with open_text(path) as lines:
        for number, line in enumerate(lines, start=1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            stamp, _, raw = line.partition(" ")
            if not stamp.isdigit() or not raw.startswith("{"):
                raise CaptureFormatError(
                    f"{path}:{number}: expected '<receive time ns> <JSON message>'"
                )
            yield CaptureLine(number, int(stamp), raw)


def capture_trades(path: Path, symbol: str | None = None) -> Iterator[Trade]:
    """The trades of a capture (`<symbol>@trade` streams), optionally of one symbol.

    Other streams (depth, bookTicker) and the REST snapshot line are passed over; a trade
    message that does not parse is an error naming the file and line, because a capture
    is our own recording and must be whole.
    """
    wanted = symbol.upper() if symbol else None
    for line in iter_capture(path):
        if "@trade" not in line.raw:  # cheap pre-filter: most lines are order book
            continue
        try:
            stream, data = parse_combined_message(line.raw)
            if not stream.endswith("@trade"):
                continue
            trade = parse_trade(data)
        except MalformedMessageError as error:
            raise CaptureFormatError(f"{path}:{line.line_number}: {error}") from None
        if wanted is None or trade.symbol == wanted:
            yield trade
