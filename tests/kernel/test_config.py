from pathlib import Path

import pytest

from tradepipe.config import ConfigError, load_settings


def test_embedded_defaults_keep_all_state_under_var(tmp_path: Path) -> None:
    settings = load_settings()
    var = (tmp_path / "var").resolve()
    assert settings.resolved_database_url == f"sqlite:///{var / 'tradepipe.db'}"
    assert settings.resolved_mlflow_tracking_uri == f"sqlite:///{var / 'mlflow' / 'mlflow.db'}"
    for path in (
        settings.resolved_airflow_home,
        settings.resolved_market_data_dir,
        settings.resolved_mlflow_artifact_root,
    ):
        assert path.is_relative_to(var)


def test_environment_overrides_toml_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "custom.toml"
    config.write_text('dashboard_port = 9100\nmlflow_port = 5100\nhome = "state"\n')
    monkeypatch.setenv("TRADEPIPE_CONFIG", str(config))
    monkeypatch.setenv("TRADEPIPE_MLFLOW_PORT", "5200")
    settings = load_settings()
    assert settings.dashboard_port == 9100  # from the file
    assert settings.mlflow_port == 5200  # the environment wins
    assert settings.state_dir == (tmp_path / "state").resolve()


def test_default_config_file_is_read_from_working_directory(tmp_path: Path) -> None:
    (tmp_path / "tradepipe.toml").write_text('log_level = "DEBUG"\n')
    assert load_settings().log_level == "DEBUG"


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("TRADEPIPE_MLFLOW_PORT", "not-a-number", "mlflow_port (TRADEPIPE_MLFLOW_PORT)"),
        ("TRADEPIPE_DASHBOARD_PORT", "70000", "dashboard_port (TRADEPIPE_DASHBOARD_PORT)"),
        ("TRADEPIPE_LOG_LEVEL", "LOUD", "log_level (TRADEPIPE_LOG_LEVEL)"),
        ("TRADEPIPE_DATABASE_URL", "tradepipe.db", "database_url (TRADEPIPE_DATABASE_URL)"),
        ("TRADEPIPE_CCXT_TIMEOUT_SECONDS", "0", "ccxt_timeout_seconds"),
    ],
)
def test_bad_value_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=named.replace("(", r"\(").replace(")", r"\)")):
        load_settings()


def test_unknown_key_in_config_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "tradepipe.toml").write_text("dashbord_port = 9100\n")
    with pytest.raises(ConfigError, match="unknown setting 'dashbord_port'"):
        load_settings()


def test_missing_named_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRADEPIPE_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match="no such config file"):
        load_settings()


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.mlflow_port = 1  # type: ignore[misc]
