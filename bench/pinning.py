"""Kept so that `python -m bench.pinning` still works: the tool is bench.engine.pinning (`mlx-sgd-bench pinning`)."""

import sys

from bench.engine.pinning import main

if __name__ == "__main__":
    sys.exit(main())
