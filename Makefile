# tradepipe: the two commands a newcomer needs are `make up` and `make test`.
# Every target that runs code depends on the environment stamp, so a fresh clone
# gets .venv created and the exact versions from requirements.lock installed first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
UV_VERSION := $(shell sed -n 's/^uv==\([^ ]*\).*/\1/p' requirements.lock)

.PHONY: help up down demo test test-celery lint docs bench lock clean-env

help:
	@echo "make up     set up the environment and database, start the platform in the background"
	@echo "make down   stop exactly what make up started"
	@echo "make demo   the pipeline headless for DEMO_MINUTES (default 2) minutes, then a summary"
	@echo "make test   set up the environment and run the whole test suite"
	@echo "make test-celery  model_lifecycle on a real CeleryExecutor (local PostgreSQL and Redis)"
	@echo "make lint   ruff over the project, mypy (strict) over every package, import contracts"
	@echo "make docs   build the docs site (docs/, mkdocs.yml) into site/, failing on any warning"
	@echo "make bench  run the benchmarks in benchmarks/"
	@echo "make lock   re-resolve requirements.lock from pyproject.toml"
	@echo "make clean-env  delete .venv"

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps --editable .
	touch $(STAMP)

up: $(STAMP)
	$(BIN)/tradepipe up

down: $(STAMP)
	$(BIN)/tradepipe down

DEMO_MINUTES ?= 2
demo: $(STAMP)
	$(BIN)/tradepipe demo --minutes $(DEMO_MINUTES)

test: $(STAMP)
	$(BIN)/python -m pytest

# Minutes, not seconds: Airflow's api-server, scheduler, dag-processor and two Celery workers
# on the local PostgreSQL (TRADEPIPE_TEST_PG_URL) and Redis (127.0.0.1:6379).
test-celery: $(STAMP)
	$(BIN)/python -m pytest -m celery_cluster tests/dags/test_celery_executor.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy app tradepipe research live streamlit_app dags benchmarks
	$(BIN)/lint-imports --no-cache --no-logo  # the import contracts in pyproject.toml

# --strict: a broken link or anchor, or a page missing from nav, fails the build (and CI).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir site

bench: $(STAMP)
	$(BIN)/python -m benchmarks

lock:
	test -x $(BIN)/uv || $(MAKE) $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 \
		--generate-hashes --no-header --quiet -o requirements.lock

clean-env:
	rm -rf $(VENV)
