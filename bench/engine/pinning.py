"""What pinning does to serial cases here: python -m bench.pinning (mlx-sgd-bench pinning) [--pairs 4].

Times a few MLX CPU cases alternately with every thread on one CPU and with
the scheduler free to place them, in one process, pair after pair (the order
inside each pair alternates), so the machine's drift hits both alike. Prints
steps/s both ways and their ratio per case: the reason `--cpu-affinity auto`
pins serial cases (docs/stable-numbers.md, "Getting stable numbers"). Linux only.
"""

from __future__ import annotations

import argparse
import statistics
import sys

from bench.backends import make_trainer
from bench.cases.case import Case
from bench.cases.datasets import make_problem
from bench.cases.models import LEARNING_RATE
from bench.cases.sizes import Size
from bench.console import exit_codes
from bench.engine import affinity
from bench.engine.defaults import ROUND_TIME_S
from bench.engine.timing import calibrate, time_rounds

CASES = (
    (Case("linear", "mlx", "autodiff", "step", batch_size=32), Size(1_000, 100)),
    (Case("linear", "mlx", "compiled", "round", batch_size=32), Size(1_000, 10)),
    (Case("linear", "mlx", "autodiff", "step"), Size(1_000, 100)),
    (Case("mlp", "mlx", "nn", "step", batch_size=256, hidden=64), Size(1_000, 100)),
    (Case("linear", "mlx", "compiled", "step"), Size(10_000, 1_000)),
)


def compare(case: Case, size: Size, cpus: tuple[int, ...], pairs: int, rounds: int = 5) -> dict[str, list[float]]:
    """steps/s of each pinned and free stretch of `rounds` rounds, alternating, in one trainer."""
    trainer = make_trainer(case, make_problem(case.model, size), LEARNING_RATE)
    trainer.run(1)
    steps = calibrate(trainer.run, ROUND_TIME_S)
    figures = {"pinned": [], "free": []}
    for pair in range(pairs):
        for mode in ("pinned", "free") if pair % 2 == 0 else ("free", "pinned"):
            with affinity.pinned(cpus if mode == "pinned" else None):
                trainer.run(steps)  # warm-up after the move
                figures[mode].append(steps / statistics.median(time_rounds(lambda: trainer.run(steps), rounds)))
    return figures


def build_parser() -> argparse.ArgumentParser:
    """The command line of python -m bench.pinning (docs/reference/pinning.md is made from it)."""
    parser = argparse.ArgumentParser(prog="python -m bench.pinning", description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=4, help="pinned/free pairs per case (default 4)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Print pinned and free steps/s for each case."""
    args = build_parser().parse_args(argv)
    if not affinity.supported():
        print("error: this platform cannot pin threads to CPUs", file=sys.stderr)
        return exit_codes.USAGE
    cpus = affinity.serial_cpus("auto")
    print(f"pinned: every thread on CPU {cpus[0]}; free: any of {list(affinity.usable_cpus())}")
    for case, size in CASES:
        figures = compare(case, size, cpus, args.pairs)
        pinned, free = statistics.median(figures["pinned"]), statistics.median(figures["free"])
        print(
            f"{case.case_id(size):<48} pinned {pinned:>9,.0f}  free {free:>9,.0f} steps/s  "
            f"pinned/free {pinned / free:.2f} (free ranged {min(figures['free']):,.0f}-{max(figures['free']):,.0f})"
        )
    return exit_codes.OK


if __name__ == "__main__":
    from bench.console.entry import run

    run(main)
