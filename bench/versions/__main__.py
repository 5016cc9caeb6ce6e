"""`python -m bench.versions`: see bench.versions."""

import sys

from bench.versions.cli import main

sys.exit(main())
