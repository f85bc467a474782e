"""The README's configuration table stays true: one row per Settings field, its environment
variable, and the defaults that are plain values (the engine's from EngineConfig)."""

from __future__ import annotations

import dataclasses
import re

from live.engine.config import SETTINGS_FIELDS, EngineConfig
from tests.conftest import REPO_ROOT
from tradepipe.config import ENV_PREFIX, Settings

ROW = re.compile(
    r"^\| `(?P<name>[a-z_]+)` \| `(?P<env>[A-Z_]+)` \| (?P<default>[^|]+) \| [^|]+ \|$"
)


def table_rows() -> dict[str, tuple[str, str]]:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = ROW.match(line)
        if match:
            assert match["name"] not in rows, f"{match['name']} is listed twice"
            rows[match["name"]] = (match["env"], match["default"].strip())
    return rows


def test_the_configuration_table_lists_every_setting_with_its_variable() -> None:
    rows = table_rows()
    assert set(rows) == set(Settings.model_fields)
    for name, (env, _) in rows.items():
        assert env == ENV_PREFIX + name.upper(), name


def test_the_plain_defaults_in_the_table_are_the_real_ones() -> None:
    rows = table_rows()
    checked = 0
    for name, field in Settings.model_fields.items():
        default = field.default
        if field.default_factory is not None or default is None or default == "":
            continue  # derived from other settings; the table says how
        assert rows[name][1] == f"`{default}`", name
        checked += 1
    engine_defaults = {item.name: item.default for item in dataclasses.fields(EngineConfig)}
    for engine_field, setting in SETTINGS_FIELDS.items():
        cell = rows[setting][1].strip("`")
        if re.fullmatch(r"[0-9.]+", cell):
            assert float(cell) == engine_defaults[engine_field], setting
            checked += 1
    assert checked >= 15
