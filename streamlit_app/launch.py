"""How to start the dashboard: the argv of `streamlit run` for the given settings.

Kept free of the CLI so `tradepipe dashboard`, `make up` and the tests start it the same
way. The dashboard process loads its own Settings (TRADEPIPE_* variables over the TOML
file), so run the argv with the caller's environment and working directory.
"""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path

from pydantic import SecretStr

from tradepipe.config import ConfigError, Settings

__all__ = ["APP_SCRIPT", "command", "exposure_refusal", "is_loopback", "usable_password"]

APP_SCRIPT = Path(__file__).resolve().parent / "app.py"


def is_loopback(host: str | None) -> bool:
    """127.0.0.0/8, ::1 and localhost; None (Streamlit's 'every interface') is not."""
    if host is None:
        return False
    name = host.strip().removeprefix("[").removesuffix("]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def usable_password(password: SecretStr | None) -> SecretStr | None:
    """The password, or None when it is unset, empty or only whitespace: a password anyone
    can type by pressing Enter protects nothing."""
    if password is None or not password.get_secret_value().strip():
        return None
    return password


def exposure_refusal(host: str | None, *, password: SecretStr | None) -> str | None:
    """Why the dashboard must not serve on `host`, or None: beyond loopback it needs a
    (non-blank) password, because it shows every bot's orders and PnL."""
    if usable_password(password) is not None or is_loopback(host):
        return None
    where = "every network interface" if host is None else f"{host}, not a loopback address,"
    problem = "without a password" if password is None else "with an empty or blank password"
    return (
        f"the dashboard would listen on {where} {problem}: set "
        "TRADEPIPE_DASHBOARD_PASSWORD (or dashboard_password in the config file), or bind "
        "it to 127.0.0.1 with TRADEPIPE_HOST"
    )


def command(settings: Settings) -> list[str]:
    """The argv that serves the dashboard on settings.host:settings.dashboard_port.

    Raises ConfigError when the host is not loopback and no password is set.
    """
    refusal = exposure_refusal(settings.host, password=settings.dashboard_password)
    if refusal is not None:
        raise ConfigError(refusal)
    # Errors show their type only off loopback: a message can name internals.
    error_details = "full" if is_loopback(settings.host) else "type"
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP_SCRIPT),
        "--server.address",
        settings.host,
        "--server.port",
        str(settings.dashboard_port),
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--server.runOnSave",
        "false",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "viewer",
        "--client.showErrorDetails",
        error_details,
    ]
