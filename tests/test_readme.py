"""The README and the docs site (docs/*.md) stay true to the code.

- The configuration table (docs/configuration.md): one row per Settings field, its
  environment variable, and the defaults that are plain values (the engine's from
  EngineConfig).
- Every `tradepipe ...` command shown, in a code block or inline, exists with every option
  it is shown with; every `make X` names a Makefile target; every `TRADEPIPE_*` variable
  named is one the code reads.
- The tables that mirror the code list all of it: BotConfig's fields (with options `bots
  add` has), the spec's `[promotion]` and `[guard]` keys and defaults, the compose services
  and their profiles, the engine API's routes, the DAGs, the benchmark modules.
- The site builds with `mkdocs build --strict` (no broken link or anchor), and the README's
  links point at files that exist.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import typer

from app.cli import app as cli_app
from live.engine.config import SETTINGS_FIELDS, EngineConfig
from tests.conftest import REPO_ROOT
from tradepipe.botconfig import BotConfig
from tradepipe.config import ENV_PREFIX, Settings

DOCS = REPO_ROOT / "docs"
DOC_FILES = [REPO_ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
DOC_IDS = [str(path.relative_to(REPO_ROOT)) for path in DOC_FILES]

ROW = re.compile(
    r"^\| `(?P<name>[a-z_]+)` \| `(?P<env>[A-Z_]+)` \| (?P<default>[^|]+) \| [^|]+ \|$"
)
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
INLINE = re.compile(r"`([^`]+)`")  # a span may wrap onto the next line


def section(path: Path, heading: str) -> str:
    text = "\n" + path.read_text(encoding="utf-8")
    assert f"\n{heading}\n" in text, f"{path.name} has no section {heading!r}"
    return text.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]


def table_rows() -> dict[str, tuple[str, str]]:
    rows = {}
    for line in section(DOCS / "configuration.md", "## Settings").splitlines():
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


# ---- commands, make targets and variables named anywhere in the docs


def code_lines(text: str) -> Iterator[str]:
    """Every line of the code blocks (continuations joined) and every inline code span."""
    for block in FENCE.findall(text):
        yield from block.replace("\\\n", " ").splitlines()
    prose = FENCE.sub("", text)
    yield from (span.replace("\n", " ") for span in INLINE.findall(prose))


def tradepipe_invocations(text: str) -> Iterator[str]:
    """`tradepipe ...` as a command (not the package path `tradepipe/...`), comment cut off;
    `a | b | c` after a command group shows one command each."""
    for line in code_lines(text):
        match = re.search(r"(?:^|\s|bin/)tradepipe((?:\s[^#]*)?)(?:#.*)?$", line)
        if not match:
            continue
        yield "tradepipe" + match[1].rstrip()


def command_tree() -> Any:
    return typer.main.get_command(cli_app)


def option_names(command: Any) -> set[str]:
    names = {"--help"}
    for param in command.params:
        for name in [*getattr(param, "opts", []), *getattr(param, "secondary_opts", [])]:
            if name.startswith("-"):
                names.add(name)
    return names


def check_invocation(root: Any, invocation: str) -> list[str]:
    """The problems of one shown invocation: an unknown command or an unknown option."""
    cleaned = invocation.replace("[", " ").replace("]", " ")
    try:
        tokens = shlex.split(cleaned)
    except ValueError:
        tokens = cleaned.split()
    problems: list[str] = []
    alternatives = " ".join(tokens[1:]).split(" | ")
    group_path: list[str] = []
    for number, alternative in enumerate(alternatives):
        words = alternative.split()
        if number > 0:  # `bots list | show alpha`: the same group, another command
            words = group_path + words
        command, path = root, []
        for position, word in enumerate(words):
            commands = getattr(command, "commands", None)
            if commands is None:  # a command: what follows are its arguments and options
                for option in words[position:]:
                    name = option.split("=", 1)[0]
                    if name.startswith("--") and name not in option_names(command):
                        problems.append(f"{' '.join(path)}: no option {name}")
                break
            if word.startswith("-") or word == "...":
                if word.startswith("--") and word not in option_names(command):
                    problems.append(f"{' '.join(path) or 'tradepipe'}: no option {word}")
                continue
            names = word.split("|")  # `bots add|set`: either
            unknown = [name for name in names if name not in commands]
            if unknown:
                problems.append(f"{' '.join(['tradepipe', *path])}: no command {unknown[0]}")
                break
            group_path = list(path)
            command, path = commands[names[0]], [*path, names[0]]
    return problems


@pytest.mark.parametrize("path", DOC_FILES, ids=DOC_IDS)
def test_every_command_shown_exists_with_its_options(path: Path) -> None:
    root = command_tree()
    problems = []
    for invocation in tradepipe_invocations(path.read_text(encoding="utf-8")):
        problems += [f"{invocation!r}: {why}" for why in check_invocation(root, invocation)]
    assert problems == []


def test_the_command_check_catches_what_is_not_there() -> None:
    root = command_tree()
    assert check_invocation(root, "tradepipe bots add x --capital 1 --take-profit-pct 1") == []
    assert check_invocation(root, "tradepipe bots list | show a | remove a") == []
    assert check_invocation(root, "tradepipe models promote NAME 7 [--reason R] [--json]") == []
    assert check_invocation(root, "tradepipe bots frobnicate x") != []
    assert check_invocation(root, "tradepipe bots add x --no-such-option 3") != []
    assert check_invocation(root, "tradepipe bots list | frobnicate a") != []
    assert check_invocation(root, "tradepipe bots add|frobnicate --capital 1") != []


def make_targets() -> set[str]:
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([a-z][a-z-]*):", makefile, re.MULTILINE)) | {".venv/.installed"}


@pytest.mark.parametrize("path", DOC_FILES, ids=DOC_IDS)
def test_every_make_target_named_exists(path: Path) -> None:
    targets = make_targets()
    named = set()
    for line in code_lines(path.read_text(encoding="utf-8")):
        named |= set(re.findall(r"(?:^|&&\s*|;\s*)make ([a-z.][a-z/.-]*)", line.strip()))
    assert named - targets == set()


def test_make_help_names_every_target() -> None:
    shown = subprocess.run(
        ["make", "--no-print-directory", "help"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    helped = set(re.findall(r"^make ([a-z-]+)", shown.stdout, re.MULTILINE))
    assert helped == make_targets() - {"help", ".venv/.installed"}


# Read by name outside Settings (each one's reader is named on docs/configuration.md).
OTHER_VARIABLES = {
    "TRADEPIPE_CONFIG",
    "TRADEPIPE_ORCHESTRATION_CONFIG",
    "TRADEPIPE_TEST_PG_URL",
    "TRADEPIPE_STRICT_TESTS",
}


@pytest.mark.parametrize("path", DOC_FILES, ids=DOC_IDS)
def test_every_variable_named_is_read(path: Path) -> None:
    settings = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    named = set(re.findall(r"TRADEPIPE_[A-Z0-9_]*[A-Z0-9]", path.read_text(encoding="utf-8")))
    assert named - settings - OTHER_VARIABLES == set()


def test_the_other_variables_are_read_by_the_code() -> None:
    sources = [
        REPO_ROOT / "tradepipe" / "config.py",
        REPO_ROOT / "research" / "orchestration" / "config.py",
        REPO_ROOT / "tests" / "conftest.py",
        REPO_ROOT / "benchmarks" / "postgres.py",
    ]
    code = "\n".join(source.read_text(encoding="utf-8") for source in sources)
    for variable in OTHER_VARIABLES:
        assert f'"{variable}"' in code, variable


# ---- tables that mirror the code


def first_column(text: str) -> list[str]:
    return [line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| `")]


def test_the_bot_config_table_lists_every_field_with_its_option() -> None:
    table = section(DOCS / "bots.md", "# Bots and risk")
    rows = [line.split("|")[1:3] for line in table.splitlines() if line.startswith("| `")]
    fields = [name.strip("` ") for cell, _ in rows for name in cell.split(",")]
    assert sorted(fields) == sorted(BotConfig.model_fields)
    add = command_tree().commands["bots"].commands["add"]
    for _, options in rows:
        for option in re.findall(r"`(--[a-z-]+)", options):
            assert option in option_names(add), option


def key_table(page: str, heading_row: str) -> dict[str, str]:
    """Key -> default cell of the table whose header row starts with `heading_row`."""
    text = (DOCS / page).read_text(encoding="utf-8")
    table = text.split(heading_row, 1)[1].split("\n\n", 1)[0]
    cells = [line.split("|")[1:3] for line in table.splitlines() if line.startswith("| `")]
    return {key.strip().strip("`"): default.strip().strip("`") for key, default in cells}


def default_cell(value: object) -> str:
    if value is None:
        return "unset"
    if isinstance(value, str):
        return f'"{value}"'
    return f"{value:g}" if isinstance(value, float) else str(value)


def test_the_promotion_and_guard_tables_are_the_spec_sections() -> None:
    from research.training.spec import PromotionSection
    from tradepipe.guard import GuardRails

    for page_table, model in (
        (key_table("models.md", "| `[promotion]` key | default |"), PromotionSection),
        (key_table("models.md", "| key | default | breached when |"), GuardRails),
    ):
        assert set(page_table) == set(model.model_fields), model.__name__
        for key, field in model.model_fields.items():
            assert page_table[key] == default_cell(field.default), f"{model.__name__}.{key}"


def test_the_compose_services_table_is_the_compose_file() -> None:
    import yaml

    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    table = section(DOCS / "production.md", "## The docker-compose stack")
    listed = {}
    for cell in first_column(table):
        profile = re.search(r"\(profile `([a-z]+)`\)", cell)
        for name in re.findall(r"`([a-z-]+)`", cell.split("(profile")[0]):
            listed[name] = [profile[1]] if profile else None
    assert set(listed) == set(compose["services"])
    for name, service in compose["services"].items():
        assert listed[name] == service.get("profiles"), name


def test_the_routes_table_lists_every_route_of_the_engine_api() -> None:
    from live.api import create_app
    from live.latency import LatencyHistograms

    # Routes are registered without touching the engine but for these two attributes.
    engine: Any = SimpleNamespace(bus=SimpleNamespace(), latency=LatencyHistograms())
    served = set()
    for route in create_app(engine, token=None).routes:
        path = re.sub(r"\{(\w+)\}", lambda m: PLACEHOLDERS[m[1]], getattr(route, "path", ""))
        for method in getattr(route, "methods", None) or {"WS"}:
            served.add(f"{method} {path}")
    table = section(DOCS / "api.md", "## Routes")
    listed = set(re.findall(r"`((?:GET|POST|PATCH|DELETE|WS) /[^`]*)`", table))
    assert listed == served


PLACEHOLDERS = {"name": "NAME", "position_id": "ID", "run_id": "RUN"}


def test_the_dags_table_lists_every_dag() -> None:
    dag_ids = set()
    for path in (REPO_ROOT / "dags").glob("*.py"):
        dag_ids |= set(re.findall(r'dag_id="([a-z_]+)"', path.read_text(encoding="utf-8")))
    table = section(DOCS / "research.md", "## The Airflow DAGs")
    assert {cell.strip("`") for cell in first_column(table)} == dag_ids


def test_the_benchmarks_table_lists_every_benchmark() -> None:
    listed = [cell.strip("`") for cell in first_column((DOCS / "benchmarks.md").read_text())]
    modules = sorted(
        path.stem.removeprefix("bench_") for path in (REPO_ROOT / "benchmarks").glob("bench_*.py")
    )
    assert listed == modules


# ---- the site and the README's links


def test_the_readme_links_point_at_files() -> None:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    assert links, "the README links the docs pages"
    missing = [link for link in links if "://" not in link and not (REPO_ROOT / link).exists()]
    assert missing == []
    pages = {f"docs/{path.name}" for path in DOCS.glob("*.md")}
    assert pages <= set(links), "every docs page is linked from the README"


def test_the_docs_site_builds_in_strict_mode(tmp_path: Path) -> None:
    # `make docs` in CI does the same; here a broken link fails the test run too.
    built = subprocess.run(
        [
            *(sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet"),
            *("--config-file", str(REPO_ROOT / "mkdocs.yml")),
            *("--site-dir", str(tmp_path / "site")),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert built.returncode == 0, built.stdout + built.stderr
    assert (tmp_path / "site" / "configuration" / "index.html").is_file()
