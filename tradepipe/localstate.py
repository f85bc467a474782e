"""Local state of the embedded defaults: the folders under `var/` and the trading database.

`make up` runs this first; it is idempotent, so running it again changes nothing.
"""

from __future__ import annotations

from pathlib import Path

from tradepipe.config import Settings
from tradepipe.db.migrate import upgrade_database
from tradepipe.db.session import mask_url


def state_folders(settings: Settings) -> dict[str, Path]:
    return {
        "state": settings.state_dir,
        "market data": settings.resolved_market_data_dir,
        "MLflow artifacts": settings.resolved_mlflow_artifact_root,
        "Airflow home": settings.resolved_airflow_home,
    }


def prepare_local_state(settings: Settings) -> list[tuple[str, str]]:
    """Create the state folders and migrate the database; report what is ready."""
    report = []
    for name, folder in state_folders(settings).items():
        folder.mkdir(parents=True, exist_ok=True)
        report.append((name, f"ready at {folder}"))
    # The MLflow SQLite store's folder must exist before a server or client opens it.
    if settings.resolved_mlflow_tracking_uri.startswith("sqlite:///"):
        Path(settings.resolved_mlflow_tracking_uri.removeprefix("sqlite:///")).parent.mkdir(
            parents=True, exist_ok=True
        )
    revision = upgrade_database(settings.resolved_database_url)
    report.append(
        ("trading database", f"migrated to {revision}: {mask_url(settings.resolved_database_url)}")
    )
    return report
