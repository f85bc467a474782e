#!/usr/bin/env bash
# One PostgreSQL server, three databases, each with its own role, so a leaked password of one
# component reaches only that component's data:
#   tradepipe  the trading database (bots, orders, positions, events, strategy registry)
#   airflow    Airflow's metadata database
#   mlflow     MLflow's tracking and model registry store
# The postgres image runs this once, as the superuser, when its data volume is empty
# (/docker-entrypoint-initdb.d); the passwords come from the environment docker-compose.yml
# hands it from the uncommitted .env. To re-run it, remove the volume (which deletes the data).
set -euo pipefail

# Every password is checked before anything is created: the image runs this script only on
# an empty volume, so a half-done run would not be repeated on the next start.
: "${TRADING_DB_PASSWORD:?TRADING_DB_PASSWORD is not set}"
: "${AIRFLOW_DB_PASSWORD:?AIRFLOW_DB_PASSWORD is not set}"
: "${MLFLOW_DB_PASSWORD:?MLFLOW_DB_PASSWORD is not set}"

create() {
    local name=$1 password=$2
    # psql variables (:'password') quote the value: a password may hold any character.
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        -v name="$name" -v password="$password" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'name', :'password') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'name', :'name') \gexec
SQL
}

create tradepipe "$TRADING_DB_PASSWORD"
create airflow "$AIRFLOW_DB_PASSWORD"
create mlflow "$MLFLOW_DB_PASSWORD"
