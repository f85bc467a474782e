"""The research pipeline's user-facing errors: one base class, one line each.

The CLI catches `ResearchError` and prints its message; anything else escaping the pipeline is
a bug and keeps its traceback. Messages name the input (spec file, data reference, model
version) and say what to do.
"""

from __future__ import annotations

__all__ = ["DatasetError", "PipelineStateError", "ResearchError", "SpecError"]


class ResearchError(Exception):
    """Bad input or state a user can fix: the message is one line naming what and how."""


class SpecError(ResearchError):
    """A model spec file that cannot be read or does not validate."""


class DatasetError(ResearchError):
    """Candles that cannot become a training set under the spec (too short, one class, NaN)."""


class PipelineStateError(ResearchError):
    """A step run out of order, e.g. promoting a version that was never validated."""
