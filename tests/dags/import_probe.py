"""Import every DAG file the way Airflow's parser does and print, as JSON, the heavy modules
each one pulled in at module level (it must be none: DAG files are parsed every few
seconds, and pandas, mlflow, lightgbm and research belong inside the tasks).

Run in a fresh interpreter by test_dag_structure.py: `python import_probe.py DAGS_FOLDER`.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

HEAVY = {"pandas", "numpy", "pyarrow", "mlflow", "lightgbm", "sklearn", "research"}


def heavy_modules() -> set[str]:
    return {name for name in sys.modules if name.split(".")[0] in HEAVY}


def main() -> None:
    import airflow.sdk  # noqa: F401 - every DAG file imports it: the baseline

    result: dict[str, object] = {"baseline": sorted(heavy_modules()), "files": {}}
    files: dict[str, list[str]] = {}
    for path in sorted(Path(sys.argv[1]).glob("*.py")):
        before = heavy_modules()
        spec = importlib.util.spec_from_file_location(f"dag_file_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
        files[path.name] = sorted(heavy_modules() - before)
    result["files"] = files
    print(json.dumps(result))


if __name__ == "__main__":
    main()
