"""The exposition format itself: label escaping and numbers, through the test's parser."""

from __future__ import annotations

import math

import pytest

from live.api.prometheus import _number, _sample, escape_label
from tests.api.promtext import parse_labels, unescape


@pytest.mark.parametrize(
    "raw", ["plain", 'quo"te', "back\\slash", "new\nline", 'all \\"\n of them', "ünï"]
)
def test_label_values_are_escaped_and_round_trip(raw: str) -> None:
    line = _sample("tradepipe_x", {"bot": raw, "other": "b"}, 1)
    assert "\n" not in line
    labels = line[line.index("{") + 1 : line.rindex("}")]
    assert parse_labels(labels) == {"bot": raw, "other": "b"}
    assert unescape(escape_label(raw)) == raw


def test_numbers_use_the_formats_spelling() -> None:
    assert _number(3) == "3"
    assert _number(0.25) == "0.25"
    assert _number(math.inf) == "+Inf"
    assert _number(-math.inf) == "-Inf"
    assert _number(math.nan) == "NaN"
