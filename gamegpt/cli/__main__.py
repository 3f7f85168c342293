"""`python -m gamegpt.cli ...`: the same command as `gamegpt ...` (what tests and torchrun start)."""

import sys

from gamegpt.cli import main

sys.exit(main())
