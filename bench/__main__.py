"""`python -m bench SUBCOMMAND`: the console command `mlx-sgd-bench` without installing the package."""

from bench.console.command import main
from bench.console.entry import run

run(main)
