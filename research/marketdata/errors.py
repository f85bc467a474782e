"""Errors a user can cause while bringing market data in; each message names the input."""

from __future__ import annotations


class IngestError(ValueError):
    """A request that cannot be carried out: bad source, file, range, timeframe or network."""


class SourceError(IngestError):
    """A source that cannot deliver: missing or malformed file, unreachable exchange."""
