"""The bodies of the Airflow tasks in dags/: each DAG task is one call into this package.

Why a package and not code in the DAG files: DAG files are parsed every few seconds by the
dag-processor and must stay cheap (no pandas, mlflow, lightgbm or research at import), and
task logic here is typed, linted and testable without Airflow. Nothing here imports Airflow:
a task passes its data interval in (`DataInterval.from_context`), gets a small JSON-ready
dict back, and Airflow stores that dict in XCom. Those dicts are references (store keys,
spec paths, run ids, model versions) and metric figures, never candles or frames.

Modules, one per DAG (imported by the tasks, not here, so importing this package is free):
`market_data`, `lifecycle` (+ `engine_notify`), `strategies`, `daily_report`; `config`
is the orchestration config (series to ingest, specs folder, engine URL, strategy
backtest window) and `common` the data interval and JSON helpers.
"""
