"""`python -m live.engine`: run the live engine in the foreground (see live.engine.run)."""

import sys

from live.engine.run import main

sys.exit(main())
