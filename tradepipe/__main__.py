"""`python -m tradepipe` refuses: the kernel imports nothing above it, so it cannot hold the
command line. The command line is the composition root's (`app.cli`)."""

import sys

sys.exit(
    "error: tradepipe is the kernel package and has no command of its own: "
    "run `tradepipe ...` (the console script) or `python -m app ...`"
)
