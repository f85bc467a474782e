"""An operator's hands in the real browser: fill a Streamlit widget, pick a selectbox option,
press a button, as a person would (mouse events and typed text over the DevTools protocol,
tests/dashboard/chromium.py), each widget found by the `st-key-<key>` class Streamlit gives
every keyed element; then wait for the script run to end and for a text to show."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.dashboard.chromium import Page

__all__ = ["choose", "click", "fill", "main_text", "press", "wait_for_text", "wait_idle"]

TIMEOUT_SECONDS = 30.0
_SCRIPT_STATE = (
    "document.querySelector('[data-testid=\"stApp\"]')?.getAttribute('data-test-script-state')"
)

_RECT_JS = """(() => {
  const found = %s;
  if (!found) return null;
  const box = found.getBoundingClientRect();
  if (box.top < 0 || box.bottom > window.innerHeight) {
    found.scrollIntoView({block: 'center', behavior: 'instant'});
    return {scrolled: true};
  }
  return {x: box.left + box.width / 2, y: box.top + box.height / 2};
})()"""


def _keyed(key: str, inner: str = "") -> str:
    return f"document.querySelector({json.dumps(f'.st-key-{key} {inner}'.strip())})"


def _point(page: Page, element_js: str, what: str, timeout: float = TIMEOUT_SECONDS) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        point = page.evaluate(_RECT_JS % element_js)
        if point and "x" in point:
            return point
        time.sleep(0.1)
    keys = page.evaluate(
        "Array.from(document.querySelectorAll('[class*=\"st-key-\"]'))"
        ".map((e) => e.className + ' ' + e.innerHTML.slice(0, 300)).join('\\n')"
    )
    raise AssertionError(f"{what} not on the page in {timeout:g} s; keyed elements: {keys}")


def _mouse_click(page: Page, point: Any) -> None:
    for kind in ("mousePressed", "mouseReleased"):
        page.call(
            "Input.dispatchMouseEvent",
            {"type": kind, "x": point["x"], "y": point["y"], "button": "left", "clickCount": 1},
        )


def click(page: Page, element_js: str, what: str, timeout: float = TIMEOUT_SECONDS) -> None:
    _mouse_click(page, _point(page, element_js, what, timeout))


def fill(page: Page, key: str, text: str) -> None:
    """Type `text` into the text or number input of widget `key`, replacing its value."""
    click(page, _keyed(key, "input"), f"input {key}")
    page.evaluate(f"{_keyed(key, 'input')}.select()")
    page.call("Input.insertText", {"text": text})
    page.evaluate(f"{_keyed(key, 'input')}.blur()")


def choose(page: Page, key: str, option: str, *, prefix: bool = False) -> None:
    """Open selectbox `key` and click its option `option` (the first that starts with it,
    with `prefix`)."""
    options = "Array.from(document.querySelectorAll('[role=\"option\"]'))"
    for _ in range(3):  # a click while the page still moves may miss: once more then
        click(page, _keyed(key, 'button[aria-label="Open"]'), f"selectbox {key}")
        if _appears(page, f"{options}.length > 0"):
            break
    test = "startsWith" if prefix else "localeCompare"
    match = f"item.innerText.trim().{test}({json.dumps(option)})"
    match = match if prefix else f"{match} === 0"
    wanted = f"{options}.find((item) => {match})"
    try:
        click(page, wanted, f"option {option!r} of {key}", timeout=10)
    except AssertionError:
        shown = page.evaluate(f"{options}.map((item) => item.innerText)")
        raise AssertionError(f"no option {option!r} of {key} among {shown}") from None
    wait_idle(page)  # outside a form, a choice reruns the page


def _appears(page: Page, condition_js: str, timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if page.evaluate(condition_js):
            return True
        time.sleep(0.05)
    return False


def press(page: Page, label: str, within: str | None = None) -> None:
    """Click the button labelled `label` (inside the element keyed `within`, if given)."""
    scope = _keyed(within) if within else "document.querySelector('[data-testid=\"stMain\"]')"
    button = (
        f"Array.from(({scope} || document).querySelectorAll('button'))"
        f".find((item) => item.innerText.trim() === {json.dumps(label)})"
    )
    click(page, button, f"button {label!r}")


def wait_idle(page: Page, timeout: float = TIMEOUT_SECONDS) -> None:
    """Until the script run a widget started has ended."""
    time.sleep(0.3)  # the run starts a moment after the change
    if not _appears(page, f"{_SCRIPT_STATE} === 'notRunning'", timeout):
        raise AssertionError(f"the page still runs after {timeout:g} s")


def main_text(page: Page) -> str:
    text = page.evaluate(
        "(() => { const m = document.querySelector('[data-testid=\"stMain\"]');"
        " return m ? m.innerText : ''; })()"
    )
    return str(text or "")


def wait_for_text(page: Page, text: str, timeout: float = TIMEOUT_SECONDS) -> str:
    """The page's text once the script is idle and `text` shows (AssertionError if not)."""
    deadline = time.monotonic() + timeout
    shown = ""
    while time.monotonic() < deadline:
        state = page.evaluate(_SCRIPT_STATE)
        shown = main_text(page)
        if state == "notRunning" and text in shown:
            return shown
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not shown in {timeout:g} s; the page shows {shown[:1500]!r}")
