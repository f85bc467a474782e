"""The production stack's files, checked without a Docker engine.

docker-compose.yml is rendered by a real compose parser, Debian's `docker-compose` 1.29
(`docker-compose config`: YAML anchors and merges resolved, ${VAR} interpolated, the schema
validated), with an env file made from .env.example whose secrets are unique markers. The
rendered services are then checked: which exist and in which profile, healthchecks and
dependency conditions, that every secret comes from the env file, that every tradepipe
service runs the Dockerfile's image with real commands and valid TRADEPIPE_* settings.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from research.orchestration.config import CONFIG_ENV, load_orchestration_config
from tests.conftest import REPO_ROOT, STRICT
from tests.dags.conftest import airflow_environment, closed_port
from tradepipe.config import Settings, load_settings

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
DOCKERFILE = REPO_ROOT / "Dockerfile"
PROBE = Path(__file__).with_name("command_probe.py")
BIN = Path(sys.executable).parent

ALWAYS = {
    "postgres",
    "migrate",
    "mlflow",
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "engine",
    "dashboard",
}
DEMO = {"replay", "demo-data"}
CELERY = {"redis", "airflow-worker"}
ONE_SHOT = {"migrate", "airflow-init", "demo-data"}
# A variable that holds a secret (not one naming a file of secrets, a path).
SECRET_NAME = re.compile(r"^(?!.*_FILE$).*(PASSWORD|SECRET|TOKEN|FERNET|_KEY$)")
CREDENTIALS_IN_URL = re.compile(r"://[^/@\s]+:[^/@\s]+@")


@pytest.fixture(scope="module")
def compose() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        message = (
            "docker-compose not found: install Debian's package "
            "(apt-get install -y docker-compose), as .ci/run does"
        )
        if STRICT:
            pytest.fail(message)
        pytest.skip(message)
    return found


def example_env() -> dict[str, str]:
    pairs = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value.strip()
    return pairs


@pytest.fixture(scope="module")
def markers() -> dict[str, str]:
    """.env.example with each placeholder secret replaced by a value found nowhere else."""
    return {
        name: f"marker-{uuid.uuid4().hex}" if "change-me" in value else value
        for name, value in example_env().items()
    }


def write_env(path: Path, values: dict[str, str]) -> Path:
    path.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    return path


def run_config(
    compose: str, env_file: Path, *extra: str, profiles: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    argv = [compose, "--project-directory", str(REPO_ROOT), "-f", str(COMPOSE_FILE)]
    argv += ["--env-file", str(env_file)]
    for profile in profiles:
        argv += ["--profile", profile]
    # Only PATH: the caller's own variables must not fill in what the env file lacks.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    return subprocess.run(
        [*argv, "config", *extra], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.fixture(scope="module")
def rendered(
    compose: str, markers: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    env_file = write_env(tmp_path_factory.mktemp("compose") / "test.env", markers)
    done = run_config(compose, env_file, profiles=("demo",))
    assert done.returncode == 0, done.stderr
    config: dict[str, Any] = yaml.safe_load(done.stdout)
    return config


def services(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = config["services"]
    return found


def tradepipe_services(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: item for name, item in services(config).items() if "build" in item}


def test_every_service_is_there_and_the_replay_feed_only_in_the_demo_profile(
    rendered: dict[str, Any],
) -> None:
    # `docker-compose config` (1.29) lists the services of every profile.
    found = services(rendered)
    assert set(found) == ALWAYS | DEMO | CELERY
    assert {name for name, item in found.items() if item.get("profiles")} == DEMO | CELERY
    assert found["replay"]["profiles"] == found["demo-data"]["profiles"] == ["demo"]
    assert found["redis"]["profiles"] == found["airflow-worker"]["profiles"] == ["celery"]
    assert set(rendered["volumes"]) == {"postgres-data", "tradepipe-data", "airflow-home"}


def test_long_running_services_have_healthchecks_and_dependencies_wait_for_them(
    rendered: dict[str, Any],
) -> None:
    found = services(rendered)
    for name, item in found.items():
        if name in ONE_SHOT:
            assert item["restart"] == "no", name
            continue
        # The worker's ping names its own node, by the container's host name: a shell.
        shell = name == "airflow-worker"
        assert item["healthcheck"]["test"][0] == ("CMD-SHELL" if shell else "CMD"), name
        assert item["restart"] == "unless-stopped", name
    for name, item in found.items():
        for target, rule in item.get("depends_on", {}).items():
            if target in ONE_SHOT:
                assert rule["condition"] == "service_completed_successfully", (name, target)
            else:
                assert rule["condition"] == "service_healthy", (name, target)
                assert "healthcheck" in found[target], target
    assert set(found["engine"]["depends_on"]) == {"postgres", "migrate", "mlflow"}
    assert set(found["airflow-scheduler"]["depends_on"]) == {
        "postgres",
        "airflow-init",
        "mlflow",
        "migrate",
        "airflow-apiserver",
    }
    for name in ("airflow-apiserver", "airflow-dag-processor", "airflow-triggerer"):
        assert found[name]["depends_on"]["airflow-init"]["condition"] == (
            "service_completed_successfully"
        )
    assert all(
        item["environment"]["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
        for name, item in found.items()
        if name.startswith("airflow-")
    )


def test_every_secret_comes_from_the_env_file_and_none_is_inline(
    rendered: dict[str, Any], markers: dict[str, str]
) -> None:
    raw = COMPOSE_FILE.read_text(encoding="utf-8")
    secret_values = {value for value in markers.values() if value.startswith("marker-")}
    assert len(secret_values) >= 10
    for placeholder in (v for v in example_env().values() if "change-me" in v):
        assert placeholder not in raw
    checked = 0
    for name, item in services(rendered).items():
        for key, value in item.get("environment", {}).items():
            text = str(value)
            if SECRET_NAME.search(key) or CREDENTIALS_IN_URL.search(text):
                checked += 1
                assert any(marker in text for marker in secret_values), (
                    f"{name}: {key} is not taken from the env file"
                )
    assert checked >= 20
    engine = services(rendered)["engine"]["environment"]
    assert engine["TRADEPIPE_ENGINE_API_TOKEN"] == markers["TRADEPIPE_ENGINE_API_TOKEN"]
    # The Airflow components that run no tasks never see the trading database's password.
    for name in ("airflow-apiserver", "airflow-dag-processor", "airflow-triggerer"):
        env = services(rendered)[name]["environment"]
        assert markers["TRADING_DB_PASSWORD"] not in json.dumps(env), name
    ignored = subprocess.run(["git", "-C", str(REPO_ROOT), "check-ignore", "-q", ".env"])
    assert ignored.returncode == 0, ".env must be git-ignored"
    example = subprocess.run(["git", "-C", str(REPO_ROOT), "check-ignore", "-q", ".env.example"])
    assert example.returncode == 1, ".env.example must be committed"


def test_a_missing_secret_stops_compose_naming_it(
    compose: str, markers: dict[str, str], tmp_path: Path
) -> None:
    without = {k: v for k, v in markers.items() if k != "TRADEPIPE_ENGINE_API_TOKEN"}
    done = run_config(compose, write_env(tmp_path / "partial.env", without))
    assert done.returncode != 0
    assert "TRADEPIPE_ENGINE_API_TOKEN" in done.stderr


def test_the_env_example_names_every_variable_compose_reads_and_no_other() -> None:
    raw = COMPOSE_FILE.read_text(encoding="utf-8")
    # $${NAME} is a literal dollar for the container's shell, not compose's variable.
    used = set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)", raw))
    assert used == set(example_env())
    # TRADEPIPE_* means a setting of tradepipe/config.py; the stack's own variables differ.
    settings = {f"TRADEPIPE_{name.upper()}" for name in Settings.model_fields}
    assert {name for name in used if name.startswith("TRADEPIPE_")} <= settings


def test_every_service_but_postgres_and_redis_runs_the_image_of_the_dockerfile(
    rendered: dict[str, Any],
) -> None:
    found = services(rendered)
    assert found["postgres"]["image"].startswith("postgres:")
    assert found["redis"]["image"].startswith("redis:")
    for name, item in found.items():
        if name in {"postgres", "redis"}:
            assert "build" not in item, name
            continue
        assert Path(item["build"]["context"]) == REPO_ROOT, name
        assert item["build"].get("dockerfile", "Dockerfile") == "Dockerfile", name
        assert item["image"] == "tradepipe:latest", name
        assert item["working_dir"] == "/app", name


def test_the_tradepipe_settings_of_every_service_are_real_and_valid(
    rendered: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    known = {f"TRADEPIPE_{name.upper()}" for name in Settings.model_fields} | {CONFIG_ENV}
    for name, item in tradepipe_services(rendered).items():
        given = {k: str(v) for k, v in item.get("environment", {}).items()}
        ours = {key: value for key, value in given.items() if key.startswith("TRADEPIPE_")}
        assert set(ours) <= known, (name, set(ours) - known)
        with monkeypatch.context() as patched:
            for key, value in ours.items():
                if key != CONFIG_ENV:
                    patched.setenv(key, value)
            settings = load_settings()  # ConfigError names a bad value
        if "TRADEPIPE_DATABASE_URL" in ours:
            assert settings.resolved_database_url.startswith("postgresql+psycopg://")
            assert settings.resolved_mlflow_tracking_uri == "http://mlflow:5000"
            assert settings.resolved_mlflow_artifact_root == Path("/data/mlflow/artifacts")
    engine = services(rendered)["engine"]["environment"]
    assert (engine["TRADEPIPE_FEED_URL"], engine["TRADEPIPE_FEED_REST_URL"]) == (
        "wss://stream.binance.com:9443",
        "https://api.binance.com",
    )


def test_the_stack_s_orchestration_config_loads_and_points_at_the_engine_service(
    rendered: dict[str, Any],
) -> None:
    scheduler = services(rendered)["airflow-scheduler"]["environment"]
    path = Path(scheduler[CONFIG_ENV])
    local = REPO_ROOT / path.relative_to("/app")
    config = load_orchestration_config(local)
    assert config.engine_api_url == "http://engine:8700"
    assert (REPO_ROOT / config.specs_dir).is_dir()


def _commands(config: dict[str, Any]) -> list[list[str]]:
    """Every command and healthcheck command of the stack's image (the worker's shell
    healthcheck has a test of its own)."""
    found = []
    for item in tradepipe_services(config).values():
        found.append([str(part) for part in item["command"]])
        if "healthcheck" in item and item["healthcheck"]["test"][0] == "CMD":
            found.append([str(part) for part in item["healthcheck"]["test"][1:]])
    return found


def test_every_command_of_the_stack_exists_with_those_options(rendered: dict[str, Any]) -> None:
    by_tool: dict[str, list[list[str]]] = {}
    for argv in _commands(rendered):
        program, *args = argv
        if program in {"tradepipe", "mlflow", "airflow"}:
            by_tool.setdefault(program, []).append(args)
            continue
        if program == "python":  # python /app/deploy/... : a file of the project
            program = args[0]
        script = REPO_ROOT / Path(program).relative_to("/app")
        assert script.is_file(), program
        if script.suffix == ".sh":
            assert script.read_text().startswith("#!/usr/bin/env bash"), program
            assert os.access(script, os.X_OK), f"{program} is not executable"
    assert set(by_tool) == {"tradepipe", "mlflow", "airflow"}
    assert ["live", "run"] in by_tool["tradepipe"]
    assert ["dashboard"] in by_tool["tradepipe"]
    assert by_tool["tradepipe"].count(["feed", "replay", "--source", "synthetic", "--speed", "1"])
    for tool, commands in by_tool.items():
        done = subprocess.run(
            [sys.executable, str(PROBE), tool, json.dumps(commands)],
            capture_output=True,
            text=True,
            timeout=180,
            cwd=REPO_ROOT,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        errors = {argv: error for argv, error in json.loads(done.stdout).items() if error}
        assert errors == {}, tool
    for args in by_tool["tradepipe"]:
        options_at = next((i for i, part in enumerate(args) if part.startswith("-")), len(args))
        helped = subprocess.run(
            [str(BIN / "tradepipe"), *args[:options_at], "--help"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert helped.returncode == 0, (args, helped.stderr[-2000:])


def test_the_probe_refuses_what_the_container_would_refuse() -> None:
    bad = [["feed", "replay", "--speeed", "1"], ["nope"], ["live"]]
    done = subprocess.run(
        [sys.executable, str(PROBE), "tradepipe", json.dumps(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
    )
    results = json.loads(done.stdout)
    assert all(results[" ".join(argv)] for argv in bad), results


def test_the_dockerfile_builds_the_locked_environment_and_runs_as_a_user() -> None:
    lines = [
        line.strip()
        for line in DOCKERFILE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert lines[0] == "FROM python:3.11-slim"
    text = "\n".join(lines)
    assert "COPY requirements.lock pyproject.toml ./" in text
    assert "uv pip sync" in text and "requirements.lock" in text
    # The uv version is read from the lock exactly as the Makefile reads it.
    makefile = (REPO_ROOT / "Makefile").read_text()
    uv_version = re.search(r"sed -n '([^']+)' requirements.lock", makefile)
    assert uv_version is not None and uv_version.group(1) in text
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in {"root", "0"}
    ignored = {
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".env", ".venv", "var", ".git"} <= ignored
    for needed in ("app", "dags", "strategies", "research", "deploy", "tradepipe", "live"):
        assert needed not in ignored


class _Status(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/ok" else 503)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def status_server() -> Iterator[str]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Status)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_healthcheck_script_passes_only_a_2xx_answer(status_server: str) -> None:
    script = REPO_ROOT / "deploy" / "docker" / "http_ok.py"

    def check(url: str) -> int:
        return subprocess.run([sys.executable, str(script), url], timeout=30).returncode

    assert check(f"{status_server}/ok") == 0
    assert check(f"{status_server}/down") == 1
    assert check(f"http://127.0.0.1:{closed_port()}/health") == 1


@pytest.fixture(scope="module")
def rendered_celery(
    compose: str, markers: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The stack as the README's Celery steps run it: the profile and the executor set."""
    values = markers | {"AIRFLOW_EXECUTOR": "CeleryExecutor", "AIRFLOW_WORKER_CONCURRENCY": "3"}
    env_file = write_env(tmp_path_factory.mktemp("compose_celery") / "celery.env", values)
    done = run_config(compose, env_file, profiles=("celery",))
    assert done.returncode == 0, done.stderr
    config: dict[str, Any] = yaml.safe_load(done.stdout)
    return config


def test_the_celery_profile_adds_a_redis_broker_and_workers_that_run_what_the_scheduler_ran(
    rendered_celery: dict[str, Any], markers: dict[str, str]
) -> None:
    found = services(rendered_celery)
    airflow = {name: item for name, item in found.items() if name.startswith("airflow-")}
    for name, item in airflow.items():
        env = item["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://redis:6379/0", name
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "redis://redis:6379/1", name
        assert env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == "3", name
    redis = found["redis"]
    assert redis["image"].startswith("redis:") and "ports" not in redis
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    worker, scheduler = found["airflow-worker"], found["airflow-scheduler"]
    assert worker["command"] == ["airflow", "celery", "worker"]
    assert worker["image"] == scheduler["image"] == "tradepipe:latest"
    # The worker runs the tasks: the scheduler's tradepipe settings, volumes and secrets.
    assert {k: v for k, v in worker["environment"].items() if k.startswith("TRADEPIPE_")} == {
        k: v for k, v in scheduler["environment"].items() if k.startswith("TRADEPIPE_")
    }
    assert markers["TRADING_DB_PASSWORD"] in worker["environment"]["TRADEPIPE_DATABASE_URL"]
    assert sorted(map(str, worker["volumes"])) == sorted(map(str, scheduler["volumes"]))
    assert worker["depends_on"] == scheduler["depends_on"] | {
        "redis": {"condition": "service_healthy"}
    }
    assert worker["healthcheck"]["test"][0] == "CMD-SHELL"
    # config keeps compose's escape: the container's shell sees ${HOSTNAME}.
    assert 'inspect ping -d "celery@$${HOSTNAME}"' in worker["healthcheck"]["test"][1]


def test_the_worker_s_healthcheck_loads_the_celery_app_of_the_locked_provider(
    rendered_celery: dict[str, Any], tmp_path: Path
) -> None:
    # Its command goes through Airflow's parser with every other (the command probe); the
    # healthcheck's app must load (it imports Airflow: a subprocess) and `inspect ping`
    # take -d. --help stops before any broker is contacted.
    worker = services(rendered_celery)["airflow-worker"]
    ping = worker["healthcheck"]["test"][1].split(" -d ")[0].split()
    assert ping[0] == "celery"
    helped = subprocess.run(
        [str(BIN / "celery"), *ping[1:], "--help"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO_ROOT,
        env=airflow_environment(tmp_path),
    )
    assert helped.returncode == 0, helped.stderr[-3000:]
    assert "--destination" in helped.stdout
