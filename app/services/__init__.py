"""The embedded platform as processes: what `tradepipe up`, `down` and `demo` start.

- `supervisor`: start a service in its own process group with a pid file and a log under
  var/run, recognise it later (pid plus start time), health-check it, stop its group.
- `stack`: the five services of the embedded stack built from Settings (MLflow server,
  Airflow standalone, replay feed, live engine, dashboard) and their logins.
- `airflow_api`: the few calls of Airflow's REST API that bootstrapping needs.
- `dagtest`: one DAG run headless through Airflow's `dag.test()` in its own process.

Nothing here imports research/ or live/: services are started as `tradepipe ...` commands,
and the bootstrap steps that need research live in research.orchestration.bootstrap.
"""
