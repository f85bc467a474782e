# One image for every service of docker-compose.yml: the live engine, the dashboard, the
# replay feed, the one-shot database migration, every Airflow component and the MLflow
# server. They differ only in their command, so one build pins one set of versions for all
# of them: requirements.lock (exact versions with hashes, installed by uv as `make` does).
#
#   docker compose build        # or: docker build -t tradepipe .

FROM python:3.11-slim

# libgomp1: LightGBM's OpenMP runtime, which the slim image lacks.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

WORKDIR /app

# The dependencies first, in their own layer: a source change does not reinstall them.
# The uv version is the one requirements.lock pins, read the way the Makefile reads it.
COPY requirements.lock pyproject.toml ./
RUN python -m venv "$VIRTUAL_ENV" \
    && pip install --no-cache-dir "uv==$(sed -n 's/^uv==\([^ ]*\).*/\1/p' requirements.lock)" \
    && uv pip sync --no-cache --python "$VIRTUAL_ENV/bin/python" requirements.lock

COPY . .
RUN uv pip install --no-cache --python "$VIRTUAL_ENV/bin/python" --no-deps --editable . \
    && chmod 0755 deploy/docker/*.sh deploy/postgres/*.sh

# Never root at run time. The folders the named volumes mount over are created here, owned
# by the service user, so a fresh volume starts with that owner (Docker copies the image's
# folder into an empty named volume).
RUN useradd --create-home --uid 10001 --user-group tradepipe \
    && mkdir -p /data/market_data /data/mlflow/artifacts /opt/airflow \
    && chown -R tradepipe:tradepipe /data /opt/airflow
USER tradepipe

# State lives on volumes (/data, /opt/airflow), never in /app; compose sets the rest.
ENV TRADEPIPE_HOME=/data \
    AIRFLOW_HOME=/opt/airflow

CMD ["tradepipe", "--help"]
