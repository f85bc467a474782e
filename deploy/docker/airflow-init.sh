#!/usr/bin/env bash
# The one-shot `airflow-init` service: migrate Airflow's metadata database to this Airflow's
# schema, then write the login of the UI's admin user. Every other Airflow service waits for
# this to finish (depends_on: service_completed_successfully); re-running it is harmless.
#
# Users: Airflow 3's default SimpleAuthManager reads its users from
# AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS and their passwords from the JSON file named by
# AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE; left alone it invents a password and
# prints it to the log. Writing the file from AIRFLOW_ADMIN_PASSWORD keeps the login in
# the .env file. For many users or single sign-on, install the FAB or Keycloak auth manager
# provider (add it to pyproject.toml and `make lock`) and set AIRFLOW__CORE__AUTH_MANAGER.
set -euo pipefail

airflow db migrate

python - <<'PY'
import json
import os
from pathlib import Path

path = Path(os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
path.parent.mkdir(parents=True, exist_ok=True)
path.write_text(json.dumps({os.environ["AIRFLOW_ADMIN_USER"]: os.environ["AIRFLOW_ADMIN_PASSWORD"]}))
path.chmod(0o600)
print(f"airflow-init: login of {os.environ['AIRFLOW_ADMIN_USER']!r} written to {path}")
PY
