"""`python -m groundvts.scripts.cli <command> ...` (e.g. under `accelerate launch -m`) is `groundvts <command> ...`."""

import sys

from groundvts.scripts.cli import main

sys.exit(main())
