"""Entry point of ``python -m bench.report`` (see bench.report.make_report)."""

import sys

from bench.console.exit_codes import INTERRUPTED
from bench.console.entry import run
from bench.report.make_report import main

try:
    run(main)
except KeyboardInterrupt:
    # Each output is replaced atomically: what was written before the interrupt is complete.
    print("interrupted: outputs already written are complete, the rest unchanged", file=sys.stderr)
    sys.exit(INTERRUPTED)
