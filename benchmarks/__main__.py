"""Run every benchmark: `python -m benchmarks` (or `make bench`) from the repository root."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def main() -> int:
    folder = Path(__file__).parent
    selected = set(sys.argv[1:])
    for module in sorted(pkgutil.iter_modules([str(folder)]), key=lambda m: m.name):
        if not module.name.startswith("bench_"):
            continue
        if selected and module.name.removeprefix("bench_") not in selected:
            continue
        print(f"== {module.name}")
        importlib.import_module(f"benchmarks.{module.name}").run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
