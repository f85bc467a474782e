"""One way to turn a pydantic ValidationError into a one-line message naming each field."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import ValidationError
from pydantic_core import ErrorDetails

__all__ = ["DescribeProblem", "describe_validation_error"]

# Words one problem: (pydantic's error item, the dotted field it is about) -> text.
DescribeProblem = Callable[[ErrorDetails, str], str]


def _field_and_message(item: ErrorDetails, field: str) -> str:
    return f"{field}: {item['msg']}"


def describe_validation_error(
    error: ValidationError, whole: str = "value", describe: DescribeProblem = _field_and_message
) -> str:
    """`field: message; other.field: message` (`whole` names a problem with no field);
    `describe` words each problem where a caller has more to say (an unknown field's
    allowed names, the environment variable of a setting)."""
    return "; ".join(
        describe(item, ".".join(str(part) for part in item["loc"]) or whole)
        for item in error.errors()
    )
