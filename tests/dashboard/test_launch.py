"""The launcher's argv and its refusal to serve beyond loopback without a password (an empty
or blank one counts as none)."""

from __future__ import annotations

import sys

import pytest
from pydantic import SecretStr

from streamlit_app.launch import APP_SCRIPT, command, exposure_refusal, is_loopback
from tradepipe.config import ConfigError, load_settings


def _option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_command_serves_the_app_on_the_configured_address() -> None:
    argv = command(load_settings(host="127.0.0.1", dashboard_port=8599))
    assert argv[:5] == [sys.executable, "-m", "streamlit", "run", str(APP_SCRIPT)]
    assert APP_SCRIPT.is_file()
    assert _option(argv, "--server.address") == "127.0.0.1"
    assert _option(argv, "--server.port") == "8599"
    assert _option(argv, "--server.headless") == "true"
    assert _option(argv, "--browser.gatherUsageStats") == "false"  # no network calls home
    assert _option(argv, "--client.showErrorDetails") == "full"


def test_beyond_loopback_a_password_is_required() -> None:
    with pytest.raises(ConfigError, match="TRADEPIPE_DASHBOARD_PASSWORD") as refused:
        command(load_settings(host="0.0.0.0"))
    assert "0.0.0.0" in str(refused.value)

    argv = command(load_settings(host="0.0.0.0", dashboard_password="s3cret-pass"))
    assert _option(argv, "--server.address") == "0.0.0.0"
    assert _option(argv, "--client.showErrorDetails") == "type"  # no internals off loopback
    assert not any("s3cret-pass" in arg for arg in argv)  # the app reads it from settings


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        (" LocalHost ", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.20", False),
        ("dashboard.example.com", False),
        ("", False),
        (None, False),  # Streamlit's default: every interface
    ],
)
def test_is_loopback(host: str | None, loopback: bool) -> None:
    assert is_loopback(host) is loopback
    refusal = exposure_refusal(host, password=None)
    assert (refusal is None) is loopback
    assert exposure_refusal(host, password=SecretStr("s3cret-pass")) is None
    for blank in ("", " ", "\t\n"):  # anyone can type these
        refusal = exposure_refusal(host, password=SecretStr(blank))
        assert (refusal is None) is loopback
        assert refusal is None or "empty or blank password" in refusal


@pytest.mark.parametrize("blank", ["", "   "])
def test_beyond_loopback_a_blank_password_is_refused(blank: str) -> None:
    with pytest.raises(ConfigError, match="empty or blank password"):
        command(load_settings(host="0.0.0.0", dashboard_password=blank))
    assert _option(command(load_settings(host="127.0.0.1", dashboard_password=blank)),
                   "--server.address") == "127.0.0.1"  # fmt: skip
