"""`python -m tradepipe` runs the command line."""

from tradepipe.cli import main

main()
