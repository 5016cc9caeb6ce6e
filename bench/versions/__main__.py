"""`python -m bench.versions`: see bench.versions."""

import sys

from bench.versions.dispatch import main

sys.exit(main())
