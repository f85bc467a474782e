"""The dashboard's password gate, its refusal to serve beyond loopback without one, and what
every page says when there is nothing (or no database) to show."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from tests.dashboard.apptest import PAGES, new_app, open_page, page_text, served_on

PASSWORD = "correct horse battery staple"
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

EMPTY_STATES = {
    "overview": ["No bots yet: add one with `tradepipe bots add", "No live engine has reported"],
    "orders": ["No bots yet, so no orders"],
    "bots": ["No bots yet", "No live engine has sent a heartbeat yet."],
    "models": ["no MLflow store at", "No models yet"],
    "strategies": ["No strategies registered yet: drop a strategy file into `strategies/`"],
    "reviews": ["No reviews yet: run `tradepipe live review --bot NAME`"],
}


@pytest.fixture
def loopback() -> Iterator[None]:
    with served_on("127.0.0.1"):
        yield


@pytest.fixture
def empty_database(
    engine: Engine, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """A migrated database with nothing in it, and no MLflow store: a fresh install."""
    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", database_url)
    monkeypatch.setenv("TRADEPIPE_HOME", str(tmp_path / "var"))
    return database_url


@SQLITE_ONLY
def test_password_gate(
    empty_database: str, loopback: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADEPIPE_DASHBOARD_PASSWORD", PASSWORD)
    at = new_app().run()
    assert not at.exception
    assert [title.value for title in at.title] == ["tradepipe"]  # the form, no page
    assert at.text_input[0].proto.type == at.text_input[0].proto.PASSWORD

    at.text_input[0].input("wrong")
    at.form_submit_button[0].click().run()
    assert [error.value for error in at.error] == ["Wrong password."]
    assert "Overview" not in [title.value for title in at.title]

    at.text_input[0].input(PASSWORD)
    at.form_submit_button[0].click().run()
    assert not at.exception
    assert [title.value for title in at.title] == ["Overview"]
    assert PASSWORD not in page_text(at)
    assert PASSWORD not in str(dict(at.session_state.items()))  # only a keyed digest is kept

    at.switch_page("screens/bots.py").run()  # the session stays signed in
    assert [title.value for title in at.title] == ["Bots"]

    monkeypatch.setenv("TRADEPIPE_DASHBOARD_PASSWORD", "a new password")
    at.run()
    assert [title.value for title in at.title] == ["tradepipe"]  # changed: signed out


@SQLITE_ONLY
@pytest.mark.parametrize("address", ["0.0.0.0", "192.168.1.20", None])
def test_refuses_to_serve_beyond_loopback_without_a_password(
    empty_database: str, address: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    with served_on(address):
        at = new_app().run()
        assert not at.exception
        (refusal,) = at.error
        assert "refuses to serve" in refusal.value
        assert "TRADEPIPE_DASHBOARD_PASSWORD" in refusal.value
        assert not at.title and not at.dataframe  # nothing else is drawn

        monkeypatch.setenv("TRADEPIPE_DASHBOARD_PASSWORD", PASSWORD)
        at.run()
        assert not at.error and len(at.text_input) == 1  # the password form instead


@SQLITE_ONLY
@pytest.mark.parametrize("blank", ["", "   ", "\t"])
def test_an_empty_or_blank_password_counts_as_none(
    empty_database: str, blank: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADEPIPE_DASHBOARD_PASSWORD", blank)
    with served_on("0.0.0.0"):
        at = new_app().run()
        assert not at.exception
        (refusal,) = at.error
        assert "refuses to serve" in refusal.value and "empty or blank password" in refusal.value
        assert not at.title and not at.text_input  # no form a blank entry would pass
    with served_on("127.0.0.1"):  # loopback needs no password: a blank one is none
        at = new_app().run()
        assert not at.exception and not at.error
        assert [title.value for title in at.title] == ["Overview"]


def test_every_page_has_an_empty_state(empty_database: str, loopback: None, tmp_path: Path) -> None:
    at = new_app()
    for page, title in PAGES.items():
        open_page(at, page)
        assert not at.exception, (page, [item.value for item in at.exception])
        assert [heading.value for heading in at.title] == [title]
        text = page_text(at)
        missing = [value for value in EMPTY_STATES[page] if value not in text]
        assert not missing, f"{page}: {missing}\n{text}"
    assert not (tmp_path / "var" / "mlflow").exists()  # a reader creates no MLflow store


@pytest.mark.parametrize("page", ["overview", "models"])
def test_missing_database_is_one_message_and_stays_missing(
    loopback: None, page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nowhere" / "tradepipe.db"
    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", f"sqlite:///{missing}")
    at = open_page(new_app(), page)
    assert not at.exception
    (error,) = at.error
    assert f"no trading database at {missing} yet" in error.value
    assert "tradepipe up" in error.value
    assert not missing.exists() and not missing.parent.exists()


def test_database_behind_the_code_says_to_upgrade(
    loopback: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    never_migrated = tmp_path / "old.db"
    never_migrated.write_bytes(b"")  # an empty SQLite file: no schema at all
    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", f"sqlite:///{never_migrated}")
    at = new_app().run()
    assert not at.exception
    (error,) = at.error
    assert "run `tradepipe db upgrade`" in error.value


def test_bad_setting_is_one_message(loopback: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEPIPE_DASHBOARD_PORT", "99999")
    at = new_app().run()
    assert not at.exception
    (error,) = at.error
    assert "Configuration error" in error.value and "dashboard_port" in error.value


def test_database_password_is_never_shown(loopback: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # An unreachable server: the page reports it, with the URL's password masked.
    url = "postgresql://trader:hunter2-secret@127.0.0.1:9/trading?connect_timeout=1"
    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", url)
    at = new_app().run()
    assert not at.exception
    text = page_text(at)
    assert "hunter2-secret" not in text
    assert "trader:***@127.0.0.1:9" in text
