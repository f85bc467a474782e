"""Secrets: exchange keys and notifier tokens, resolved by name, never stored.

Configs (bot configs, settings, the database) hold only the *name* of a secret; its value
comes from the environment (a variable of exactly that name) or from a secrets file outside
the repository (`secrets_file`, env `TRADEPIPE_SECRETS_FILE`). That keeps values out of
everything the platform persists or shows. Every value resolved here is also remembered so
that log records can be redacted (`redact`, installed as a log-record factory on the first
resolution): a value that slips into an exception or a URL never reaches a log.

The secrets file is either dotenv (`NAME=value` lines, `#` comments, optional quotes) or
TOML (a `.toml` suffix; top-level `NAME = "value"`). It is refused when it lies inside the
project's working tree (it would be one `git add` away from the repository) or when its
permissions let the group or others read it.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import threading
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradepipe.config import ConfigError

if TYPE_CHECKING:
    from tradepipe.config import Settings

__all__ = [
    "SECRET_NAME",
    "SecretNotFoundError",
    "SecretsFileError",
    "check_secret_name",
    "install_log_redaction",
    "known_secret_values",
    "redact",
    "register_secret_value",
    "resolve_secret",
]

# An environment-variable style name: what a config may hold instead of a value.
SECRET_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
REDACTED = "***"
# Values shorter than this are not redacted from logs: replacing "1" everywhere would
# wreck every log line while protecting nothing a real key or token looks like.
_MIN_REDACTED_LENGTH = 6
_PROJECT_ROOT = Path(__file__).resolve().parents[1]


class SecretNotFoundError(ConfigError):
    """No value for a named secret; the message names the secret and where it was looked
    for, never a value."""


class SecretsFileError(ConfigError):
    """The secrets file is missing, unreadable, malformed, inside the repository or
    readable by others."""


def looks_like_secret_value(text: str) -> bool:
    """True for text that reads like a key or token rather than a name: lowercase or
    punctuation an env-variable name never has, or a long run without any word break.
    Used to refuse a config that pastes a value where a name belongs."""
    if SECRET_NAME.match(text):
        # An upper-case name: suspicious only as one long unbroken run mixing digits.
        return "_" not in text and len(text) >= 24 and any(c.isdigit() for c in text)
    return True


def check_secret_name(name: str, *, what: str = "secret name") -> str:
    """Return `name` if it is a valid secret name; the error never repeats the input, in
    case it is a value pasted by mistake."""
    if not isinstance(name, str) or looks_like_secret_value(name):
        raise ValueError(
            f"{what} must be the NAME of a secret (upper-case letters, digits and _, e.g. "
            "BINANCE_TESTNET), not its value: put the value in the environment or the "
            "secrets file (TRADEPIPE_SECRETS_FILE) and give its name here"
        )
    return name


def resolve_secret(name: str, settings: Settings | None = None) -> str:
    """The value of secret `name`: the environment variable of exactly that name, else the
    secrets file named by the settings. Raises SecretNotFoundError (never showing a value)."""
    try:
        check_secret_name(name)
    except ValueError as error:
        raise SecretNotFoundError(str(error)) from None
    value = os.environ.get(name)
    if value:
        return register_secret_value(value)
    if settings is None:
        from tradepipe.config import load_settings

        settings = load_settings()
    secrets_file = settings.secrets_file
    if secrets_file is not None:
        values = read_secrets_file(secrets_file)
        if values.get(name):
            return register_secret_value(values[name])
        where = f"the environment or the secrets file {secrets_file}"
    else:
        where = "the environment (no secrets file configured: TRADEPIPE_SECRETS_FILE)"
    raise SecretNotFoundError(f"secret {name} not found in {where}: set {name} there")


def read_secrets_file(path: Path) -> dict[str, str]:
    """Every NAME -> value of a secrets file, after checking where it lies and who may
    read it."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise SecretsFileError(f"secrets file {path}: no such file (TRADEPIPE_SECRETS_FILE)")
    resolved = path.resolve()
    inside = _working_tree_containing(resolved)
    if inside is not None:
        raise SecretsFileError(
            f"secrets file {path} lies inside the working tree {inside}: move it outside "
            "the repository (e.g. ~/.config/tradepipe/secrets.env) so it can never be committed"
        )
    mode = resolved.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretsFileError(
            f"secrets file {path} is accessible to group or others "
            f"(mode {stat.filemode(mode)}): run `chmod 600 {path}`"
        )
    try:
        text = resolved.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        # Only the error's class: a decode error's text quotes the file's bytes.
        raise SecretsFileError(
            f"secrets file {path}: cannot read it ({error.__class__.__name__})"
        ) from None
    if resolved.suffix == ".toml":
        return _parse_toml(path, text)
    return _parse_dotenv(path, text)


def _working_tree_containing(path: Path) -> Path | None:
    """The project checkout or any git working tree that contains `path`, if one does."""
    if path.is_relative_to(_PROJECT_ROOT):
        return _PROJECT_ROOT
    for parent in path.parents:
        if (parent / ".git").exists():
            return parent
    return None


def _parse_toml(path: Path, text: str) -> dict[str, str]:
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        # The decoder's message names a line and column, never the file's content.
        raise SecretsFileError(f"secrets file {path}: not valid TOML ({error})") from None
    values: dict[str, str] = {}
    for key, value in data.items():
        if not isinstance(value, str):
            raise SecretsFileError(
                f'secrets file {path}: {key} must be a string (top-level NAME = "value")'
            )
        values[key] = value
    return values


_DOTENV_LINE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")


def _parse_dotenv(path: Path, text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _DOTENV_LINE.match(line)
        if match is None:
            # The line may be a bare secret: name its number only.
            raise SecretsFileError(
                f"secrets file {path}, line {number}: expected NAME=value (dotenv format)"
            )
        name, value = match.group(1), match.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[name] = value
    return values


# --- redaction ----------------------------------------------------------------------------

_known_values: set[str] = set()
_lock = threading.Lock()
_factory_installed = False


def register_secret_value(value: str) -> str:
    """Remember `value` so logs never show it; returns it for chaining."""
    if len(value) >= _MIN_REDACTED_LENGTH:
        with _lock:
            _known_values.add(value)
        install_log_redaction()
    return value


def known_secret_values() -> frozenset[str]:
    with _lock:
        return frozenset(_known_values)


def redact(text: str) -> str:
    """`text` with every known secret value replaced by ***, longest first (so a value
    that contains another is removed whole)."""
    values = known_secret_values()
    if not values or not text:
        return text
    for value in sorted(values, key=len, reverse=True):
        if value in text:
            text = text.replace(value, REDACTED)
    return text


def install_log_redaction() -> None:
    """Redact known secret values from every log record as it is created.

    A record factory (not a filter) because filters on a logger do not see records that
    propagate from child loggers, and handlers are added by whoever configures logging;
    the factory sees every record of the process, including exception tracebacks, which
    are rendered here once, redacted, and cached on the record."""
    global _factory_installed
    with _lock:
        if _factory_installed:
            return
        _factory_installed = True
    previous = logging.getLogRecordFactory()
    formatter = logging.Formatter()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if not known_secret_values():
            return record
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave it for logging to report
            return record
        redacted = redact(message)
        if redacted != message:
            # only then: formatters such as uvicorn's access log unpack `args` themselves
            record.msg, record.args = redacted, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(formatter.formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return record

    logging.setLogRecordFactory(factory)
