"""`python -m bench SUBCOMMAND`: the console command `mlx-sgd-bench` without installing the package."""

import sys

from bench.console.command import main

sys.exit(main())
