"""One way to turn a pydantic ValidationError into a one-line message naming each field."""

from __future__ import annotations

from pydantic import ValidationError


def describe_validation_error(error: ValidationError, whole: str = "value") -> str:
    """`field: message; other.field: message` (`whole` names a problem with no field)."""
    return "; ".join(
        f"{'.'.join(str(part) for part in item['loc']) or whole}: {item['msg']}"
        for item in error.errors()
    )
