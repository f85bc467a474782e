"""Live model quality, recomputed every `quality_seconds` off the event loop.

The engine's own evidence (the decision log and the recorded candles) is read back by a
worker thread (`asyncio.to_thread`) and turned into per-version figures by
`tradepipe.quality_report`, the computation the CLI and the dashboard use too; /metrics
then shows the last result (`latest`) without computing anything per scrape. The window is
the last `quality_window_seconds` of market time (a replay of 2024 measures 2024). Each
version's quality reference is read from the registry once and kept: it never changes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from tradepipe.quality import QualityReference
from tradepipe.quality_report import VersionQuality, quality_from_evidence

__all__ = ["QualityMonitor"]

log = logging.getLogger(__name__)


class QualityMonitor:
    def __init__(
        self,
        *,
        decision_root: Path | None,
        market_data_root: Path | None,
        exchange: str,
        tracking_uri: str,
        window_seconds: float,
        market_now_ms: Callable[[], int | None],
    ) -> None:
        self.decision_root = decision_root
        self.market_data_root = market_data_root
        self.exchange = exchange
        self.tracking_uri = tracking_uri
        self.window_ms = round(window_seconds * 1000)
        self._market_now_ms = market_now_ms
        self._references: dict[tuple[str, str], QualityReference | None] = {}
        self.latest: tuple[VersionQuality, ...] = ()
        self.refreshes = 0
        self.failures = 0

    @property
    def enabled(self) -> bool:
        """Quality needs both halves of the evidence: decisions and the candles after them."""
        return self.decision_root is not None and self.market_data_root is not None

    async def refresh(self) -> None:
        now_ms = self._market_now_ms()
        if not self.enabled or now_ms is None:  # no market time yet: nothing decided
            return
        start_ms = now_ms - self.window_ms
        try:
            self.latest = tuple(await asyncio.to_thread(self.compute, start_ms))
        except Exception:
            self.failures += 1
            log.exception("live model quality not computed; the last figures stay")
            return
        self.refreshes += 1

    def compute(self, start_ms: int) -> list[VersionQuality]:
        assert self.decision_root is not None and self.market_data_root is not None
        return quality_from_evidence(
            self.decision_root,
            self.market_data_root,
            self.exchange,
            self._reference,
            start_ms=start_ms,
        )

    def metrics(self) -> dict[str, float]:
        return {
            "quality_refreshes_total": float(self.refreshes),
            "quality_failures_total": float(self.failures),
        }

    def _reference(self, name: str, version: str) -> QualityReference | None:
        key = (name, version)
        if key not in self._references:
            from tradepipe.registry import ModelRegistry, RegistryError

            try:
                found = ModelRegistry(self.tracking_uri).quality_reference(name, version)
            except RegistryError as error:  # figures without the reference; asked again
                log.warning("quality reference of %s version %s: %s", name, version, error)
                return None
            self._references[key] = found
        return self._references[key]
