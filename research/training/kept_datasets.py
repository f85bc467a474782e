"""Datasets kept between the steps of a pipeline run, so features and labels are built once.

The lifecycle's tasks (build_dataset -> train -> validate -> promote, research/orchestration/
lifecycle.py) run in separate processes, and each needs the dataset of the same candles under
the same spec. The first to build it saves it in the workspace's `dataset_dir`, named by the
hash of what determines it: the candles' content hash, the spec's content hash and
DATASET_FORMAT (bump it when `build_dataset` changes what it returns). The others load it:
numpy saves float64 and integer arrays as they are, so a loaded dataset is the built one bit
for bit. A file that cannot be read is built again; only the newest KEEP files stay.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from research.marketdata.load import CandleData
from research.training.dataset import Dataset, build_dataset
from research.training.spec import ModelSpec

__all__ = ["DATASET_FORMAT", "KEEP", "dataset_key", "kept_dataset"]

DATASET_FORMAT = 1
KEEP = 4  # a run's dataset and a few before it (a retry or a backfill of a recent interval)
_ARRAYS = ("features", "rows", "labels", "start_ms", "label_end_ms")


def dataset_key(data: CandleData, spec: ModelSpec) -> str:
    parts = {"format": DATASET_FORMAT, "data": data.content_hash, "spec": spec.content_hash}
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def kept_dataset(folder: Path | None, data: CandleData, spec: ModelSpec) -> Dataset:
    """The dataset of `data` under `spec`: loaded from `folder` when a step built it before,
    else built (DatasetError as `build_dataset` raises it) and kept there. No folder: built."""
    if folder is None:
        return build_dataset(data.candles, spec, source=data.source)
    path = folder / f"dataset-{dataset_key(data, spec)}.npz"
    loaded = _load(path, data, spec)
    if loaded is not None:
        return loaded
    dataset = build_dataset(data.candles, spec, source=data.source)
    _save(path, dataset)
    return dataset


def _load(path: Path, data: CandleData, spec: ModelSpec) -> Dataset | None:
    try:
        with np.load(path, allow_pickle=False) as saved:
            arrays = {name: saved[name] for name in _ARRAYS}
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None  # missing, or not whole (a crash mid-write leaves only the temp file)
    candles = data.candles.reset_index(drop=True)  # as build_dataset indexes them
    names = list(spec.features.feature_names)
    if arrays["features"].shape != (len(candles), len(names)):
        return None
    path.touch()  # the newest use decides what pruning keeps
    return Dataset(
        candles=candles,
        features=pd.DataFrame(arrays["features"], index=candles.index, columns=names),
        rows=arrays["rows"],
        labels=arrays["labels"],
        start_ms=arrays["start_ms"],
        label_end_ms=arrays["label_end_ms"],
        timeframe=spec.parsed_timeframe,
        source=data.source,
    )


def _save(path: Path, dataset: Dataset) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(
        temporary,
        features=dataset.features.to_numpy(dtype=np.float64),
        rows=dataset.rows,
        labels=dataset.labels,
        start_ms=dataset.start_ms,
        label_end_ms=dataset.label_end_ms,
    )
    os.replace(temporary, path)  # readers see the whole file or none
    kept = sorted(path.parent.glob("dataset-*.npz"), key=lambda file: file.stat().st_mtime)
    for old in kept[:-KEEP]:
        old.unlink(missing_ok=True)
