"""The one console command, ``mlx-sgd-bench SUBCOMMAND ARGS``: a dispatcher to the suite's tools.

Each subcommand hands its arguments unchanged to the tool's own ``main`` (which parses them and
answers ``--help``), so ``mlx-sgd-bench report ARGS`` is ``python -m bench.report ARGS`` and
``mlx-sgd-bench versions history ARGS`` and ``mlx-sgd-bench history ARGS`` are
``python -m bench.versions history ARGS`` (the release runner's modes are its own subcommands). The main job
stays ``pytest --benchmark-only``.
"""

from __future__ import annotations

import importlib
import sys

from bench import __version__
from bench.console import exit_codes
from bench.console.entry import run

PROG = "mlx-sgd-bench"
EXIT_USAGE = exit_codes.USAGE

# subcommand: (module holding main, arguments put before the user's, what it does)
SUBCOMMANDS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "report": (
        "bench.report.make_report",
        (),
        "compare saved runs: tables, plots, index.html (python -m bench.report)",
    ),
    "versions": (
        "bench.versions.dispatch",
        (),
        "MLX releases, interleaved: compare | history | bisect | self-test (python -m bench.versions)",
    ),
    "history": (
        "bench.versions.dispatch",
        ("--history",),
        "measure every published release in a range (python -m bench.versions --history)",
    ),
    "agreement": (
        "bench.report.agreement",
        (),
        "how far two saved runs agree, beside the machine's probe (python -m bench.report.agreement)",
    ),
    "calibration": (
        "bench.report.calibration",
        (),
        "whether the intervals hold over pairs of runs; the run terms they imply; each pair checked with the terms "
        "of the others (python -m bench.report.calibration)",
    ),
    "pinning": ("bench.engine.pinning", (), "what pinning does to serial cases here (python -m bench.pinning)"),
}


def usage() -> str:
    """The text of ``mlx-sgd-bench --help``."""
    width = max(len(name) for name in SUBCOMMANDS)
    lines = [
        f"usage: {PROG} [--help] [--version] SUBCOMMAND [ARGS ...]",
        "",
        "How fast MLX trains classic models with SGD, against NumPy and its peers.",
        "The benchmarks themselves run with `pytest --benchmark-only` from the checkout.",
        "",
        "subcommands (each takes `--help`):",
    ]
    lines += [f"  {name:<{width}}  {text}" for name, (_, _, text) in SUBCOMMANDS.items()]
    lines += ["", "options:", "  -h, --help  show this message and exit", "  --version   show the version and exit"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a subcommand's tool; return its exit status (2 for a bad command line)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage(), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else EXIT_USAGE
    if argv[0] == "--version":
        print(f"{PROG} {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"{PROG}: unknown subcommand {name!r} (choose from {', '.join(SUBCOMMANDS)})", file=sys.stderr)
        return EXIT_USAGE
    module, prefix, _ = SUBCOMMANDS[name]
    tool = importlib.import_module(module).main
    try:
        return tool([*prefix, *rest])
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return exit_codes.INTERRUPTED


def console() -> None:
    """The installed `mlx-sgd-bench`: main, ending as every tool does (bench.console.entry)."""
    run(main)


if __name__ == "__main__":
    console()
