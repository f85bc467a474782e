"""A tiny harness: best-of-N timing and a uniform report line."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Measurement:
    name: str
    seconds: float
    items: int
    unit: str

    @property
    def rate(self) -> float:
        return self.items / self.seconds if self.seconds else float("inf")


def best_of(repeats: int, work: Callable[[], object]) -> float:
    """Fastest of `repeats` runs: the least disturbed by the rest of the machine."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def report(title: str, measured: Measurement, reference: Measurement) -> None:
    ratio = measured.seconds / reference.seconds
    print(f"{title}")
    for item in (measured, reference):
        print(f"  {item.name:<44} {item.seconds * 1000:10.1f} ms  {item.rate:14,.0f} {item.unit}/s")
    speed = f"{1 / ratio:,.1f}x faster" if ratio < 1 else f"{ratio:,.1f}x slower"
    print(f"  ratio {measured.name} / {reference.name}: {ratio:.3g} of the time ({speed})")


def print_target(
    figure: str, value: float, limit: float, unit: str, *, at_most: bool = True
) -> None:
    """One line: the figure, the target beside it (issue 17's), met or missed."""
    met = value <= limit if at_most else value >= limit
    target = f"{'≤' if at_most else '≥'} {limit:,.0f} {unit}"
    print(f"  {figure}: {value:,.2f} {unit}, target {target}: {'met' if met else 'missed'}")
