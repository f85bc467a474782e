"""A read-only look at the MLflow model registry for the Models page.

The promotion history comes from the trading database; this adds what only MLflow knows:
the registered models, their versions with their runs' metrics, and which version holds
which alias (`champion`, `challenger`). A store that does not exist yet is reported, never
created, and an unreachable server is one message on the page, not an exception.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from tradepipe.db.session import mask_url

if TYPE_CHECKING:
    from tradepipe.registry import ModelVersionInfo as RegisteredVersion
    from tradepipe.registry import RegisteredModel, RunRecord

__all__ = ["LINEAGE_KEYS", "RegisteredModelInfo", "RegistryRead", "read"]

# Where training records what a version was built from: version tags, run tags or params.
LINEAGE_KEYS = ("data_fingerprint", "feature_spec_hash", "strategy_hash")
MAX_VERSIONS = 20  # newest versions per model whose run metrics are read
_HTTP_TIMEOUT_SECONDS = "5"
_CREDENTIALS = re.compile(r"(://[^/\s:@]+:)[^@\s/]+@")


@dataclass(frozen=True, slots=True)
class RegisteredModelInfo:
    """A registered model with its newest versions (their runs' metrics merged into each
    version's own) and what each version was built from."""

    model: RegisteredModel
    versions: tuple[RegisteredVersion, ...]  # newest first
    lineage: Mapping[str, Mapping[str, str]]  # version -> the LINEAGE_KEYS found for it

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def description(self) -> str | None:
        return self.model.description

    @property
    def aliases(self) -> Mapping[str, str]:  # alias -> version
        return self.model.aliases

    @property
    def champion(self) -> str | None:
        return self.aliases.get("champion")


@dataclass(frozen=True, slots=True)
class RegistryRead:
    models: tuple[RegisteredModelInfo, ...]
    problem: str | None = None  # why the registry could not be read (models is then empty)


def read(tracking_uri: str) -> RegistryRead:
    """Every registered model with its newest versions; never raises."""
    label = _label(tracking_uri)
    missing = _missing_store(tracking_uri)
    if missing is not None:
        return RegistryRead((), f"no MLflow store at {missing} yet: no model has been trained")
    if urlparse(tracking_uri).scheme in {"http", "https"}:
        # A stopped server should cost the page seconds, not MLflow's default minutes.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", _HTTP_TIMEOUT_SECONDS)
    try:
        return RegistryRead(_read(tracking_uri))
    except Exception as error:  # any failure of a foreign store is shown, not raised
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        # MLflow's messages repeat the URL it called, credentials included.
        reason = _CREDENTIALS.sub(r"\1***@", first_line)
        return RegistryRead((), f"cannot read the MLflow registry at {label}: {reason}")


def _read(tracking_uri: str) -> tuple[RegisteredModelInfo, ...]:
    from tradepipe.registry import ModelRegistry  # heavy: imported only when the page asks

    registry = ModelRegistry(tracking_uri)
    models = []
    for model in registry.registered_models():
        newest = list(reversed(registry.versions(model.name)))[:MAX_VERSIONS]
        versions, lineage = [], {}
        for found in newest:
            run = registry.run_record(found.run_id) if found.run_id else None
            versions.append(_with_run_metrics(found, run))
            lineage[found.version] = _lineage(found, run)
        models.append(RegisteredModelInfo(model, tuple(versions), lineage))
    return tuple(models)


def _with_run_metrics(found: RegisteredVersion, run: RunRecord | None) -> RegisteredVersion:
    """The version's own (logged-model) metrics over its training run's."""
    return replace(found, metrics={**(run.metrics if run else {}), **found.metrics})


def _lineage(found: RegisteredVersion, run: RunRecord | None) -> dict[str, str]:
    """LINEAGE_KEYS from the version's tags, else its run's tags, else its run's params."""
    sources = (found.tags, *((run.tags, run.params) if run else ()))
    lineage: dict[str, str] = {}
    for source in sources:
        for key in LINEAGE_KEYS:
            if key in source and key not in lineage:
                lineage[key] = source[key]
    return lineage


def _missing_store(tracking_uri: str) -> Path | None:
    """The local store's path when it does not exist (opening it would create it)."""
    parsed = urlparse(tracking_uri)
    if parsed.scheme == "sqlite":
        database = unquote(tracking_uri.split(":///", 1)[1]) if ":///" in tracking_uri else ""
        if database and database != ":memory:":
            path = Path(database)
            return None if path.is_file() else path
        return None
    if parsed.scheme in {"", "file"}:
        path = Path(unquote(parsed.path) if parsed.scheme else tracking_uri)
        return None if path.exists() else path
    return None


def _label(tracking_uri: str) -> str:
    return mask_url(tracking_uri) if "://" in tracking_uri else tracking_uri
