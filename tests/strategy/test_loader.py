"""The strategy loader: a file becomes a validated class, or one error with file and line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tradepipe.strategy import (
    StrategyLoadError,
    StrategyParameterError,
    content_hash,
    load_strategy,
)

GOOD = """
from tradepipe.strategy import Enter, Strategy, StrategyParameters


class Params(StrategyParameters):
    threshold: float = 0.5


class Buyer(Strategy):
    Parameters = Params
    required_features = ("rsi_14",)

    def on_candle(self, context):
        return Enter() if context.features["rsi_14"] < self.parameters.threshold else None
"""


def write(tmp_path: Path, source: str, name: str = "buyer.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return path


def test_a_good_file_loads_with_name_class_and_content_hash(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    loaded = load_strategy(path)
    assert (loaded.name, loaded.class_name, loaded.path) == ("buyer", "Buyer", path)
    assert loaded.content_hash == content_hash(path.read_bytes())
    strategy = loaded.create({"threshold": 0.7})
    assert strategy.parameters.threshold == 0.7  # type: ignore[attr-defined]
    assert loaded.cls.required_features == ("rsi_14",)


def test_the_hash_follows_the_content_not_the_name(tmp_path: Path) -> None:
    first = load_strategy(write(tmp_path, GOOD, "a.py"))
    second = load_strategy(write(tmp_path, GOOD, "b.py"))
    edited = load_strategy(write(tmp_path, GOOD + "\n# tweak\n", "a.py"))
    assert first.content_hash == second.content_hash != edited.content_hash
    assert first.cls is not edited.cls  # an edit gives a fresh class


def test_parameters_are_validated_before_the_strategy_exists(tmp_path: Path) -> None:
    loaded = load_strategy(write(tmp_path, GOOD))
    with pytest.raises(StrategyParameterError, match="threshold: Input should be a valid number"):
        loaded.create({"threshold": "high"})
    with pytest.raises(StrategyParameterError, match="thresold: Extra inputs are not permitted"):
        loaded.create({"thresold": 0.2})


def test_an_imported_strategy_class_does_not_count(tmp_path: Path) -> None:
    write(tmp_path, GOOD, "base_lib.py")
    path = write(
        tmp_path,
        f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        from base_lib import Buyer  # defined elsewhere: not this file's strategy
        """,
        "importer.py",
    )
    with pytest.raises(StrategyLoadError, match="defines no Strategy subclass"):
        load_strategy(path)


@pytest.mark.parametrize(
    ("source", "line", "message"),
    [
        ("x = 1\ndef broken(:\n    pass\n", 2, "syntax error"),
        ("import math\nvalue = 1 / 0\n", 2, "ZeroDivisionError: division by zero"),
        ("from tradepipe.strategy import Strategy\nimport no_such_module\n", 2,
         "ModuleNotFoundError"),
        ("from tradepipe.strategy import Strategy\n\n\nclass A(Strategy):\n"
         "    INTERFACE_VERSION = 99\n\n    def on_candle(self, context):\n        return None\n",
         4, "interface 99"),
        ("from tradepipe.strategy import Strategy\n\nclass A(Strategy):\n    pass\n", 3,
         "does not implement on_candle"),
        ("from tradepipe.strategy import Strategy, StrategyParameters\n\n"
         "class P(StrategyParameters):\n    window: int\n\n"
         "class A(Strategy):\n    Parameters = P\n\n    def on_candle(self, context):\n"
         "        return None\n", 6, "parameter defaults do not validate"),
        ("from tradepipe.strategy import Strategy\n\nclass A(Strategy):\n"
         "    required_features = 'rsi'\n\n"
         "    def on_candle(self, context):\n        return None\n",
         3, "required_features must be a tuple"),
    ],
)  # fmt: skip
def test_each_problem_names_file_and_line(
    tmp_path: Path, source: str, line: int, message: str
) -> None:
    path = write(tmp_path, source, "bad.py")
    with pytest.raises(StrategyLoadError) as raised:
        load_strategy(path)
    assert raised.value.line == line
    assert str(raised.value).startswith(f"{path}:{line}: ")
    assert message in str(raised.value)


def test_no_class_two_classes_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(StrategyLoadError, match="defines no Strategy subclass"):
        load_strategy(write(tmp_path, "x = 1\n", "empty.py"))
    two = GOOD + "\n\nclass Other(Buyer):\n    pass\n"
    with pytest.raises(StrategyLoadError, match=r"2 strategy classes \(Buyer, Other\)"):
        load_strategy(write(tmp_path, two, "two.py"))
    with pytest.raises(StrategyLoadError, match="cannot read"):
        load_strategy(tmp_path / "gone.py")
    with pytest.raises(StrategyLoadError, match="null bytes"):
        (tmp_path / "nul.py").write_bytes(b"x = 1\x00\n")
        load_strategy(tmp_path / "nul.py")
