"""`python -m bench.versions`: see bench.versions."""

from bench.console.entry import run
from bench.versions.dispatch import main

run(main)
