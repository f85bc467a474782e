"""Secrets resolve by name from the environment or a private file outside the repository;
every error names the secret or the file, never a value; resolved values are redacted from
logs."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from tradepipe.config import ConfigError, load_settings
from tradepipe.secrets import (
    SecretNotFoundError,
    SecretsFileError,
    check_secret_name,
    redact,
    resolve_secret,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
FAKE_KEY = "fAkEkEy0123456789abcdefSECRETvalue"


def private_file(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


def test_environment_wins_over_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = private_file(tmp_path / "secrets.env", "EX_API_KEY=from-the-file-123\n")
    settings = load_settings(secrets_file=secrets)
    assert resolve_secret("EX_API_KEY", settings) == "from-the-file-123"
    monkeypatch.setenv("EX_API_KEY", "from-the-env-456")
    assert resolve_secret("EX_API_KEY", settings) == "from-the-env-456"


def test_dotenv_and_toml_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dotenv = private_file(
        tmp_path / "s.env",
        "# exchange\nexport A_KEY='quoted value'\nB_KEY = \"double\"\n\nC_KEY=plain=with=equals\n",
    )
    monkeypatch.setenv("TRADEPIPE_SECRETS_FILE", str(dotenv))  # the setting, from the env
    assert resolve_secret("A_KEY") == "quoted value"
    assert resolve_secret("B_KEY") == "double"
    assert resolve_secret("C_KEY") == "plain=with=equals"
    toml = private_file(tmp_path / "s.toml", 'TG_TOKEN = "123:abc-token"\n')
    assert resolve_secret("TG_TOKEN", load_settings(secrets_file=toml)) == "123:abc-token"


def test_missing_secret_names_it_and_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(SecretNotFoundError, match="secret NOPE_API_KEY not found in the env"):
        resolve_secret("NOPE_API_KEY", load_settings())
    secrets = private_file(tmp_path / "s.env", "OTHER=x\n")
    with pytest.raises(ConfigError, match=f"NOPE not found .*{secrets}"):
        resolve_secret("NOPE", load_settings(secrets_file=secrets))


@pytest.mark.parametrize(
    ("content", "mode", "message"),
    [
        ("A=1\n", 0o644, r"accessible to group or others .*chmod 600"),
        ("A=1\n", 0o640, "accessible to group or others"),
        (f"{FAKE_KEY}\n", 0o600, "line 1: expected NAME=value"),
        (f"A = {FAKE_KEY}\n", 0o600, "not valid TOML"),
    ],
)
def test_bad_secrets_files_are_refused_without_showing_content(
    tmp_path: Path, content: str, mode: int, message: str
) -> None:
    suffix = ".toml" if "TOML" in message else ".env"
    path = tmp_path / f"secrets{suffix}"
    path.write_text(content)
    path.chmod(mode)
    with pytest.raises(SecretsFileError, match=message) as caught:
        resolve_secret("A", load_settings(secrets_file=path))
    assert FAKE_KEY not in str(caught.value)


def test_missing_file_and_file_inside_the_repository(tmp_path: Path) -> None:
    with pytest.raises(SecretsFileError, match="no such file"):
        resolve_secret("A", load_settings(secrets_file=tmp_path / "absent.env"))
    inside = REPO_ROOT / "var" / "test-secrets-inside-repo.env"
    inside.parent.mkdir(exist_ok=True)
    try:
        private_file(inside, "A=1\n")
        with pytest.raises(SecretsFileError, match=r"inside the working tree .*move it outside"):
            resolve_secret("A", load_settings(secrets_file=inside))
    finally:
        inside.unlink(missing_ok=True)
    checkout = tmp_path / "other_checkout"
    (checkout / ".git").mkdir(parents=True)
    (checkout / "conf").mkdir()
    nested = private_file(checkout / "conf" / "s.env", "A=1\n")
    with pytest.raises(SecretsFileError, match="inside the working tree"):
        resolve_secret("A", load_settings(secrets_file=nested))


@pytest.mark.parametrize(
    "value",
    [
        FAKE_KEY,
        "123456789:AAHfakeTelegramToken_xyz",
        "lowercase_name",
        "ABCDEF0123456789ABCDEF0123",
    ],
)
def test_values_where_names_belong_are_refused_without_echo(value: str) -> None:
    with pytest.raises(ValueError, match="NAME of a secret") as caught:
        check_secret_name(value)
    assert value not in str(caught.value)
    with pytest.raises(SecretNotFoundError) as not_found:
        resolve_secret(value, load_settings())
    assert value not in str(not_found.value)


def test_names_pass() -> None:
    for name in ("BINANCE_TESTNET", "TG_TOKEN", "WEBHOOK_HMAC_SECRET", "A"):
        assert check_secret_name(name) == name


def test_resolved_values_never_reach_logs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    secret = "tok-" + os.urandom(8).hex()
    monkeypatch.setenv("REDACT_ME_TOKEN", secret)
    assert resolve_secret("REDACT_ME_TOKEN", load_settings()) == secret
    log_file = tmp_path / "engine.log"
    handler = logging.FileHandler(log_file)
    child = logging.getLogger("tests.secrets.child")
    child.addHandler(handler)
    try:
        with caplog.at_level(logging.INFO):
            child.info("calling https://api.telegram.org/bot%s/sendMessage", secret)
            try:
                raise RuntimeError(f"request to /bot{secret}/sendMessage failed")
            except RuntimeError:
                child.exception("delivery failed")
    finally:
        child.removeHandler(handler)
        handler.close()
    assert "api.telegram.org/bot***/sendMessage" in caplog.text
    assert secret not in caplog.text
    assert "RuntimeError" in caplog.text and "bot***" in caplog.text
    assert secret not in log_file.read_text()
    assert redact(f"x{secret}y") == "x***y"
    # records without a secret keep their arguments (uvicorn's access formatter unpacks them)
    with caplog.at_level(logging.INFO):
        child.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "GET", "/health", "1.1", 200)
    assert caplog.records[-1].args == ("127.0.0.1:5", "GET", "/health", "1.1", 200)
