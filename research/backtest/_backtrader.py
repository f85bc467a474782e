"""backtrader, imported once without the DeprecationWarnings its 2019 sources raise when
Python compiles them (invalid escape sequences in docstrings), which would otherwise fail
a test run that treats warnings as errors."""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    # compile-time warnings carry no module to filter on: silence them for this import only
    warnings.simplefilter("ignore", DeprecationWarning)
    warnings.simplefilter("ignore", SyntaxWarning)
    import backtrader as bt

__all__ = ["bt"]
