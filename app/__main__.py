"""`python -m app` runs the command line (the `tradepipe` console script's module form)."""

from app.cli import main

main()
