"""A strict little parser of Prometheus text format 0.0.4, for asserting on /metrics."""

from __future__ import annotations

import re

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
COMMENT = re.compile(r"^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$")

Sample = tuple[str, dict[str, str], float]


def unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), value)


def parse_labels(text: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    position = 0
    while position < len(text):
        match = LABEL.match(text, position)
        assert match, f"bad label set at {text[position:]!r}"
        labels[match.group(1)] = unescape(match.group(2))
        position = match.end()
        if position < len(text):
            assert text[position] == ",", f"expected ',' in {text!r}"
            position += 1
    return labels


def parse(text: str) -> tuple[list[Sample], dict[str, str]]:
    """Every line a sample or a HELP/TYPE comment; (samples, family name -> type)."""
    assert text.endswith("\n")
    samples: list[Sample] = []
    types: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("#"):
            comment = COMMENT.match(line)
            assert comment, f"bad comment line {line!r}"
            if comment.group(1) == "TYPE":
                assert comment.group(3) in {"counter", "gauge"}, line
                types[comment.group(2)] = comment.group(3)
            continue
        match = SAMPLE.match(line)
        assert match, f"bad sample line {line!r}"
        name, labels, value = match.groups()
        assert name in types, f"{name} has no TYPE line before it"
        samples.append((name, parse_labels(labels or ""), float(value)))
    return samples, types


def value(samples: list[Sample], name: str, **labels: str) -> float:
    found = [v for n, got, v in samples if n == name and labels.items() <= got.items()]
    assert len(found) == 1, f"{name}{labels}: {len(found)} samples"
    return found[0]
