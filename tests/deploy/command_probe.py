"""Parse, without running, the commands docker-compose.yml gives its services.

`python command_probe.py TOOL JSON` where JSON is a list of argv lists (without the program
name) for TOOL, one of tradepipe, mlflow, airflow; prints a JSON object {"argv joined":
"error" or null}. Each command goes through the tool's own parser (click for tradepipe's
typer app and for mlflow, argparse for airflow), so a misspelt subcommand, an unknown
option or a bad option value is an error, exactly as the container would hit it, while
nothing is started. Run in a subprocess by test_compose.py: Airflow's import configures
the process it runs in, which must not be pytest's.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from typing import Any


class ProbeError(Exception):
    """A command the parser refused."""


def click_parse(root: Any, program: str, argv: list[str]) -> None:
    """Walk the groups to the named command and let it parse its own options. Duck-typed:
    typer carries its own copy of click, whose classes are not click's."""
    command, args, name = root, list(argv), program
    while hasattr(command, "list_commands"):
        if not args:
            raise ProbeError(f"{name}: a subcommand is missing")
        sub = command.get_command(command.make_context(name, [], resilient_parsing=True), args[0])
        if sub is None:
            raise ProbeError(f"{name}: no such command {args[0]!r}")
        command, name, args = sub, args[0], args[1:]
    try:
        command.make_context(name, args)
    except Exception as problem:
        if hasattr(problem, "format_message"):  # click's (or typer's click's) usage errors
            raise ProbeError(problem.format_message()) from None
        raise


def parser_for(tool: str) -> object:
    if tool == "tradepipe":
        import typer

        from app.cli import app

        return lambda argv: click_parse(typer.main.get_command(app), "tradepipe", argv)
    if tool == "mlflow":
        from mlflow.cli import cli

        return lambda argv: click_parse(cli, "mlflow", argv)
    if tool == "airflow":
        from airflow.cli.cli_parser import get_parser

        return get_parser().parse_args
    raise SystemExit(f"unknown tool {tool!r}")


def main(tool: str, commands: list[list[str]]) -> dict[str, str | None]:
    parse = parser_for(tool)
    results: dict[str, str | None] = {}
    for argv in commands:
        stderr = io.StringIO()
        error: str | None = None
        try:
            with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
                parse(argv)  # type: ignore[operator]
        except ProbeError as problem:
            error = str(problem)
        except SystemExit as exit_:  # argparse reports a bad command this way
            error = stderr.getvalue().strip() or f"exit {exit_.code}"
        results[" ".join(argv)] = error
    return results


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], json.loads(sys.argv[2]))))
