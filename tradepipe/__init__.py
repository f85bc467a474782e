"""tradepipe: the shared kernel that research, the live engine and the dashboard agree on.

The kernel holds domain types, candle aggregation, configuration and the database; it never
imports `app`, `research`, `live`, `dags` or `streamlit_app` (see ARCHITECTURE.md; the
import contracts in pyproject.toml, checked by `make lint`, hold it to that).
"""

__version__ = "0.1.0"
