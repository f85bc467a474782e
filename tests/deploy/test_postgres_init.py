"""deploy/postgres/init-databases.sh on a real, private PostgreSQL cluster.

The postgres image runs the script once, as the superuser over the local socket, on an
empty data volume. Here a throwaway cluster (initdb in a temporary folder, listening on a
Unix socket only, so nothing on the machine's ports is touched) gets the same treatment;
then each role must own its database and log in with its password, quotes and all, once
password authentication is switched on.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml

from tests.conftest import REPO_ROOT, STRICT

SCRIPT = REPO_ROOT / "deploy" / "postgres" / "init-databases.sh"
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
PORT = "5499"  # names the socket file only: the cluster listens on no TCP port
PASSWORDS = {
    "TRADING_DB_PASSWORD": 'it\'s a "quoted" pw; DROP ROLE x',
    "AIRFLOW_DB_PASSWORD": "airflow-pw",
    "MLFLOW_DB_PASSWORD": "mlflow pw with spaces",
}


def _bin_dir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: p.parts[-3])
    return found[-1].parent if found else None


@dataclass
class Cluster:
    bin_dir: Path
    folder: Path
    as_postgres: list[str]  # the prefix that runs a command as the cluster's owner

    def run(
        self, *argv: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        full_env = {"PATH": os.environ.get("PATH", ""), "PGHOST": str(self.folder)}
        full_env |= {"PGPORT": PORT, **(env or {})}
        return subprocess.run(
            [*self.as_postgres, "env", *(f"{k}={v}" for k, v in full_env.items()), *argv],
            capture_output=True,
            text=True,
            timeout=60,
        )

    def sql(
        self,
        query: str,
        user: str = "postgres",
        password: str | None = None,
        database: str = "postgres",
    ) -> str:
        env = {} if password is None else {"PGPASSWORD": password}
        done = self.run("psql", "-X", "-At", "-U", user, "-d", database, "-c", query, env=env)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    bin_dir = _bin_dir()
    if bin_dir is None:
        message = "PostgreSQL's server binaries (initdb) are not installed"
        if STRICT:
            pytest.fail(message)
        pytest.skip(message)
    # initdb refuses to run as root: then the cluster belongs to the postgres user, in a
    # folder it can reach (pytest's tmp_path is private to root).
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    folder = Path(tempfile.mkdtemp(prefix="tradepipe-pginit-"))
    if as_postgres:
        shutil.chown(folder, "postgres", "postgres")
    made = Cluster(bin_dir, folder, as_postgres)
    data = folder / "data"
    done = made.run(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust")
    assert done.returncode == 0, done.stderr
    options = f"-p {PORT} -k {folder} -c listen_addresses=''"
    pg_ctl = str(bin_dir / "pg_ctl")
    done = made.run(
        pg_ctl, "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start"
    )
    assert done.returncode == 0, done.stderr
    try:
        yield made
    finally:
        made.run(pg_ctl, "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)


def run_script(cluster: Cluster, passwords: dict[str, str]) -> subprocess.CompletedProcess[str]:
    script = cluster.folder / SCRIPT.name
    shutil.copy(SCRIPT, script)
    if cluster.as_postgres:
        shutil.chown(script, "postgres", "postgres")
    return cluster.run("bash", str(script), env={"POSTGRES_USER": "postgres", **passwords})


def password_auth(cluster: Cluster) -> None:
    """Password authentication for every role but the superuser, as in the image."""
    hba = cluster.folder / "data" / "pg_hba.conf"
    rules = "local all postgres trust\nlocal all all scram-sha-256\n"
    cluster.run("sh", "-c", f"printf '{rules}' > {hba}")
    assert cluster.sql("SELECT pg_reload_conf()") == "t"


def test_three_databases_each_owned_by_its_role_that_logs_in_with_its_password(
    cluster: Cluster,
) -> None:
    done = run_script(cluster, PASSWORDS)
    assert done.returncode == 0, done.stderr

    owners = cluster.sql(
        "SELECT datname || '=' || pg_get_userbyid(datdba) FROM pg_database "
        "WHERE datname IN ('tradepipe', 'airflow', 'mlflow') ORDER BY datname"
    )
    assert owners.splitlines() == ["airflow=airflow", "mlflow=mlflow", "tradepipe=tradepipe"]

    password_auth(cluster)
    for role, variable in (
        ("tradepipe", "TRADING_DB_PASSWORD"),
        ("airflow", "AIRFLOW_DB_PASSWORD"),
        ("mlflow", "MLFLOW_DB_PASSWORD"),
    ):
        assert cluster.sql("SELECT current_user", user=role, password=PASSWORDS[variable]) == role
        refused = cluster.run(
            "psql", "-X", "-U", role, "-d", "postgres", "-c", "SELECT 1", env={"PGPASSWORD": "x"}
        )
        assert refused.returncode != 0 and "password authentication failed" in refused.stderr


def test_a_missing_password_stops_the_script_before_it_creates_anything(cluster: Cluster) -> None:
    partial = {k: v for k, v in PASSWORDS.items() if k != "MLFLOW_DB_PASSWORD"}
    done = run_script(cluster, partial)
    assert done.returncode != 0
    assert "MLFLOW_DB_PASSWORD is not set" in done.stderr
    # Nothing half-done: the image would not run the script again on the next start.
    assert cluster.sql("SELECT count(*) FROM pg_roles WHERE rolname = 'tradepipe'") == "0"


def test_each_component_migrates_its_own_database_with_its_own_role(
    cluster: Cluster, tmp_path: Path
) -> None:
    """What the stack's one-shots do on a first start: `tradepipe db upgrade` (migrate),
    deploy/docker/airflow-init.sh (airflow-init) and MLflow's schema (the server creates it),
    each with the very URLs docker-compose.yml gives it (psycopg 3), pointed at this cluster."""
    assert run_script(cluster, PASSWORDS).returncode == 0
    password_auth(cluster)

    def local(value: str) -> str:
        """A URL of docker-compose.yml, pointed at this cluster's socket."""
        with_secret = re.sub(
            r"\$\{(\w+)[^}]*\}", lambda found: quote(PASSWORDS[found[1]], safe=""), value
        )
        database = with_secret.replace("@postgres:5432/", "@/")
        return f"{database}?host={cluster.folder}&port={PORT}"

    compose = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))["services"]
    trading_url = local(compose["migrate"]["environment"]["TRADEPIPE_DATABASE_URL"])
    mlflow_url = local(compose["mlflow"]["environment"]["MLFLOW_BACKEND_STORE_URI"])
    airflow_db = {
        name: local(value)
        for name, value in compose["airflow-init"]["environment"].items()
        if name.startswith("AIRFLOW__DATABASE__")
    }
    assert set(airflow_db) == {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC",
    }

    bin_dir = Path(sys.executable).parent
    base = {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "HOME": str(tmp_path)}
    trading = subprocess.run(
        [str(bin_dir / "tradepipe"), "db", "upgrade"],
        env=base | {"TRADEPIPE_DATABASE_URL": trading_url},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert trading.returncode == 0, trading.stdout + trading.stderr
    tables = "SELECT count(*) FROM pg_tables WHERE tableowner = '{}'"
    assert int(cluster.sql(tables.format("tradepipe"), database="tradepipe")) > 5

    mlflow = subprocess.run(
        [str(bin_dir / "mlflow"), "db", "upgrade", mlflow_url],
        env=base,
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    assert mlflow.returncode == 0, mlflow.stderr[-3000:]

    passwords_file = tmp_path / "airflow" / "passwords.json"
    airflow = subprocess.run(
        [str(REPO_ROOT / "deploy" / "docker" / "airflow-init.sh")],
        env=base
        | {
            "AIRFLOW_HOME": str(tmp_path / "airflow"),
            **airflow_db,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
            "AIRFLOW_ADMIN_USER": "ops",
            "AIRFLOW_ADMIN_PASSWORD": 'pa"ss word',
        },
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert airflow.returncode == 0, airflow.stdout[-3000:] + airflow.stderr[-3000:]
    assert json.loads(passwords_file.read_text()) == {"ops": 'pa"ss word'}
    assert passwords_file.stat().st_mode & 0o777 == 0o600
    for role in ("airflow", "mlflow"):
        assert int(cluster.sql(tables.format(role), database=role)) > 10, role
