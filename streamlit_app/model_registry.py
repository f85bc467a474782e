"""A read-only look at the MLflow model registry for the Models page.

The promotion history comes from the trading database; this adds what only MLflow knows:
the registered models, their versions with their runs' metrics, and which version holds
which alias (`champion`, `challenger`). A store that does not exist yet is reported, never
created, and an unreachable server is one message on the page, not an exception.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from tradepipe.db.session import mask_url

if TYPE_CHECKING:
    from tradepipe.registry import ModelRegistry
    from tradepipe.registry import ModelVersionInfo as RegisteredVersion

__all__ = ["LINEAGE_KEYS", "ModelVersionInfo", "RegisteredModelInfo", "RegistryRead", "read"]

# Where training records what a version was built from: version tags, run tags or params.
LINEAGE_KEYS = ("data_fingerprint", "feature_spec_hash", "strategy_hash")
MAX_VERSIONS = 20  # newest versions per model whose run metrics are read
_HTTP_TIMEOUT_SECONDS = "5"
_CREDENTIALS = re.compile(r"(://[^/\s:@]+:)[^@\s/]+@")


@dataclass(frozen=True, slots=True)
class ModelVersionInfo:
    version: str
    aliases: tuple[str, ...]
    status: str
    created_at: datetime | None
    run_id: str | None
    metrics: dict[str, float] = field(default_factory=dict)
    lineage: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RegisteredModelInfo:
    name: str
    description: str | None
    aliases: dict[str, str]  # alias -> version
    versions: tuple[ModelVersionInfo, ...]  # newest first

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
        models.append(
            RegisteredModelInfo(
                name=model.name,
                description=model.description,
                aliases=dict(model.aliases),
                versions=tuple(_version(registry, found) for found in newest),
            )
        )
    return tuple(models)


def _version(registry: ModelRegistry, found: RegisteredVersion) -> ModelVersionInfo:
    metrics = dict(found.metrics)
    lineage = {key: found.tags[key] for key in LINEAGE_KEYS if key in found.tags}
    if found.run_id:
        run = registry.run_record(found.run_id)
        metrics = {**run.metrics, **metrics}
        for source in (run.tags, run.params):
            for key in LINEAGE_KEYS:
                if key in source and key not in lineage:
                    lineage[key] = source[key]
    return ModelVersionInfo(
        version=found.version,
        aliases=tuple(sorted(found.aliases)),
        status=found.status,
        created_at=found.created_at,
        run_id=found.run_id,
        metrics=metrics,
        lineage=lineage,
    )


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
