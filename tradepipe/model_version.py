"""A registered model version as the kernel sees it, without MLflow: its description
(`ModelVersionInfo`), the loaded version that scores features (`LoadedModel`), model URIs and
the registry's errors. `tradepipe.registry`, the one module that talks to MLflow, makes
these and re-exports them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from tradepipe.features import FeatureSpec

__all__ = [
    "FEATURE_SPEC_HASH_TAG",
    "FEATURE_SPEC_TAG",
    "LoadedModel",
    "ModelLoadError",
    "ModelNotFoundError",
    "ModelPinnedError",
    "ModelVersionInfo",
    "RegisteredModel",
    "RegistryError",
    "RunRecord",
    "parse_model_uri",
]

# The features a version was trained on: the live engine computes them incrementally.
FEATURE_SPEC_TAG = "feature_spec"
FEATURE_SPEC_HASH_TAG = "feature_spec_hash"

FloatArray = npt.NDArray[np.float64]


class RegistryError(Exception):
    """A registry problem a user or operator can act on; one line."""


class ModelNotFoundError(RegistryError):
    """No such registered model, version or alias."""


class ModelPinnedError(RegistryError):
    """The champion of a pinned model may not move."""


class ModelLoadError(RegistryError):
    """A version whose artifact cannot be loaded or does not return probabilities."""


@dataclass(frozen=True, slots=True)
class ModelVersionInfo:
    name: str
    version: str
    run_id: str | None
    source: str
    aliases: tuple[str, ...]
    tags: Mapping[str, str]
    status: str = ""
    created_at: datetime | None = None
    # Metrics MLflow 3 keeps on the logged model; the training run's are in RunRecord.
    metrics: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    name: str
    description: str | None
    aliases: Mapping[str, str]  # alias -> version


@dataclass(frozen=True, slots=True)
class RunRecord:
    """What a version's training run logged: metrics, tags and params."""

    metrics: Mapping[str, float]
    tags: Mapping[str, str]
    params: Mapping[str, str]


@dataclass(frozen=True)
class LoadedModel:
    """A registered version ready to score features: `predict_proba(frame)` gives the
    probability of the positive (take-profit) class per row."""

    name: str
    version: str
    run_id: str | None
    feature_names: tuple[str, ...]
    tags: Mapping[str, str]
    _pyfunc: Any = field(repr=False)

    @property
    def feature_spec_hash(self) -> str | None:
        return self.tags.get(FEATURE_SPEC_HASH_TAG)

    def feature_spec(self) -> FeatureSpec | None:
        """The feature spec the version was trained on; None if it was not recorded.

        Raises ModelLoadError when the recorded spec no longer hashes to the recorded hash
        (the feature formulas changed since): its features cannot be reproduced.
        """
        text = self.tags.get(FEATURE_SPEC_TAG)
        if text is None:
            return None
        try:
            spec = FeatureSpec.from_dict(json.loads(text))
        except ValueError as error:  # bad JSON or a spec this kernel no longer accepts
            raise ModelLoadError(
                f"{self.name} version {self.version}: unreadable {FEATURE_SPEC_TAG} tag "
                f"({str(error).splitlines()[0]})"
            ) from None
        if self.feature_spec_hash is not None and spec.content_hash != self.feature_spec_hash:
            raise ModelLoadError(
                f"{self.name} version {self.version}: trained on features of another "
                "implementation version; they cannot be reproduced, retrain the model"
            )
        return spec

    def predict_proba(self, features: pd.DataFrame) -> FloatArray:
        """P(label 1) per row of `features` (extra columns ignored, missing ones refused)."""
        missing = [name for name in self.feature_names if name not in features.columns]
        if missing:
            raise ModelLoadError(
                f"{self.name} version {self.version}: features lack columns {missing[:5]}"
            )
        frame = features[list(self.feature_names)] if self.feature_names else features
        raw = np.asarray(self._pyfunc.predict(frame), dtype=np.float64)
        if raw.ndim == 2 and raw.shape[1] in (1, 2):
            raw = raw[:, -1]  # a two-column output is [P(0), P(1)]
        if raw.shape != (len(frame),):
            raise ModelLoadError(
                f"{self.name} version {self.version}: returned shape {raw.shape} "
                f"for {len(frame)} rows, not one probability per row"
            )
        finite = raw[np.isfinite(raw)]
        if len(finite) != len(raw) or bool(((finite < 0) | (finite > 1)).any()):
            raise ModelLoadError(
                f"{self.name} version {self.version}: returns values outside [0, 1] "
                "(classes or raw scores, not probabilities)"
            )
        return raw

    def predict_defined(self, features: pd.DataFrame) -> FloatArray:
        """`predict_proba` on the rows whose features are all defined; NaN on the others
        (the warm-up of a history), so a strategy sees "no probability" there."""
        columns = list(self.feature_names) or list(features.columns)
        defined = features[columns].notna().all(axis=1).to_numpy()
        result = np.full(len(features), np.nan)
        if defined.any():
            result[defined] = self.predict_proba(features.loc[defined])
        return result


def parse_model_uri(uri: str) -> tuple[str, str | None, str | None]:
    """`models:/name@alias` -> (name, alias, None); `models:/name/3` -> (name, None, "3")."""
    usage = f"model {uri!r}: use models:/<name>@<alias> or models:/<name>/<version>"
    rest = uri.removeprefix("models:/")
    if rest == uri or not rest:
        raise RegistryError(usage)
    if "@" in rest:
        name, alias = rest.rsplit("@", 1)
        if name and alias and "/" not in name:
            return name, alias, None
    elif rest.count("/") == 1:
        name, version = rest.split("/")
        if name and version.isdigit():
            return name, None, version
    raise RegistryError(usage)
