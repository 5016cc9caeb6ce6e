"""Kept so that `python -m bench.pinning` still works: the tool is bench.engine.pinning (`mlx-sgd-bench pinning`)."""

from bench.engine.pinning import main

if __name__ == "__main__":
    from bench.console.entry import run

    run(main)
