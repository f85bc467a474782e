"""/metrics read back through prometheus_client's own parser of the text format, strictly:
every family must have its TYPE line (the parser calls a family without one `unknown`)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

Sample = tuple[str, dict[str, str], float]


def parse(text: str) -> tuple[list[Sample], dict[str, str]]:
    """(samples, family name -> type); a counter's family name is without `_total`."""
    assert text.endswith("\n")
    samples: list[Sample] = []
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        assert family.type != "unknown", f"{family.name} has no TYPE line before it"
        assert family.name not in types, f"{family.name} twice"
        types[family.name] = family.type
        samples.extend((sample.name, sample.labels, sample.value) for sample in family.samples)
    return samples, types


def value(samples: list[Sample], name: str, **labels: str) -> float:
    found = [v for n, got, v in samples if n == name and labels.items() <= got.items()]
    assert len(found) == 1, f"{name}{labels}: {len(found)} samples"
    return found[0]
