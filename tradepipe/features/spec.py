"""The feature specification: which features, with which parameters, under which hash.

A spec is data, not code: research embeds it in its TOML run files and logs it with every
model, the live engine keys its shared feature state by its hash. The hash covers the
parameters and `IMPLEMENTATION_VERSION`, so a model trained on one set of formulas can
never silently be fed features computed by another: bump the constant whenever a formula
in `batch.py`/`incremental.py` changes what it returns.

Every parameter group is a list (an empty list disables the group) because TOML has no
null; lists must be strictly increasing so that one set of features has one spelling and
therefore one hash.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Mapping
from functools import cached_property
from itertools import pairwise
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Bump when any formula changes (a new hash orphans models trained on the old features).
IMPLEMENTATION_VERSION = 1

_Count = Annotated[int, Field(strict=True, ge=1, le=100_000)]
_Window = Annotated[int, Field(strict=True, ge=2, le=100_000)]


class FeatureSpec(BaseModel):
    """Parameters of every feature; `feature_names` lists the columns they produce."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field("default", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    version: Annotated[int, Field(strict=True, ge=1)] = 1
    return_horizons: tuple[_Count, ...] = (1, 3, 6, 12, 24)
    sma_windows: tuple[_Count, ...] = (5, 10, 20, 30)
    ema_spans: tuple[_Count, ...] = (12, 26)
    volatility_windows: tuple[_Window, ...] = (10, 30)
    rsi_periods: tuple[_Count, ...] = (14,)
    momentum_periods: tuple[_Count, ...] = (10,)
    volume_windows: tuple[_Window, ...] = (20,)
    taker_net_flow: bool = Field(True, strict=True)
    taker_flow_windows: tuple[_Count, ...] = (10,)
    candle_shape: bool = Field(True, strict=True)

    @field_validator(
        "return_horizons",
        "sma_windows",
        "ema_spans",
        "volatility_windows",
        "rsi_periods",
        "momentum_periods",
        "volume_windows",
        "taker_flow_windows",
    )
    @classmethod
    def _strictly_increasing(cls, values: tuple[int, ...]) -> tuple[int, ...]:
        if any(later <= earlier for earlier, later in pairwise(values)):
            raise ValueError(
                f"must be strictly increasing without repeats, got {list(values)}: "
                f"write {sorted(set(values))}"
            )
        return values

    @model_validator(mode="after")
    def _not_empty(self) -> FeatureSpec:
        if not self.feature_names:
            raise ValueError("a feature spec must enable at least one feature")
        return self

    @cached_property
    def warmup_by_feature(self) -> dict[str, int]:
        """Feature name -> index of the first row where it is defined (NaN before).

        Rows count candles, not time: a gap in the data is simply not a row.
        """
        first: dict[str, int] = {}
        first.update({f"ret_{h}": h for h in self.return_horizons})
        first.update({f"close_sma_{w}": w - 1 for w in self.sma_windows})
        first.update({f"close_ema_{s}": s - 1 for s in self.ema_spans})
        first.update({f"logret_std_{w}": w for w in self.volatility_windows})
        first.update({f"parkinson_{w}": w - 1 for w in self.volatility_windows})
        first.update({f"rsi_{n}": n for n in self.rsi_periods})
        first.update({f"momentum_{n}": n for n in self.momentum_periods})
        for w in self.volume_windows:
            first.update({f"volume_ratio_{w}": w - 1, f"volume_zscore_{w}": w - 1})
        if self.taker_net_flow:
            first["taker_net_flow"] = 0
        first.update({f"taker_net_flow_{w}": w - 1 for w in self.taker_flow_windows})
        if self.candle_shape:
            for shape in ("body", "upper_wick", "lower_wick", "close_location", "log_range"):
                first[shape] = 0
        return first

    @cached_property
    def feature_names(self) -> tuple[str, ...]:
        """Output columns, in the order both implementations produce them."""
        return tuple(self.warmup_by_feature)

    @cached_property
    def warmup(self) -> int:
        """Rows before every feature is defined: row `warmup` is the first complete one.

        Taker flow features stay NaN on candles without taker volume whatever the warm-up.
        """
        return max(self.warmup_by_feature.values())

    @cached_property
    def content_hash(self) -> str:
        """sha256 of the canonical JSON of the spec and the implementation version."""
        canonical = json.dumps(
            {"implementation_version": IMPLEMENTATION_VERSION, "spec": self.to_dict()},
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=True,
        )
        return hashlib.sha256(canonical.encode("ascii")).hexdigest()

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A validated copy with `update` applied.

        pydantic's own model_copy skips validation and copies the cached derived values
        (names, warm-up, hash), which would describe the original: revalidate instead.
        """
        if not update:
            return self  # frozen: sharing is copying
        return self.model_validate(self.model_dump() | dict(update))

    def to_dict(self) -> dict[str, Any]:
        """Plain builtins (lists, not tuples): what TOML and JSON hold."""
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSpec:
        """Validate a mapping (e.g. a table read from TOML); unknown keys are refused."""
        return cls.model_validate(data)

    def to_toml(self) -> str:
        """The spec as TOML key/value lines, ready to sit under a `[features]` table."""
        lines = []
        for key, value in self.to_dict().items():
            lines.append(f"{key} = {_toml_value(value)}")
        return "\n".join(lines) + "\n"

    @classmethod
    def from_toml(cls, text: str) -> FeatureSpec:
        return cls.from_dict(tomllib.loads(text))


def _toml_value(value: object) -> str:
    # The spec holds only these types; json's string escapes are valid TOML basic strings.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=True)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")  # pragma: no cover


def default_spec() -> FeatureSpec:
    """The default feature set (26 features, warm-up 30 rows)."""
    return FeatureSpec()
