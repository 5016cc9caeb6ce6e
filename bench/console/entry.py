"""How every tool's command line ends: its main's exit status, and a quiet exit when its reader goes away.

A tool's output piped into `head` (or a pager quit early) closes the pipe
while the tool still prints; Python then raises BrokenPipeError at the next
write and again when it flushes stdout at exit. That is the reader's choice,
not an error: the tool stops without a traceback, with the status a shell
gives a process ended by SIGPIPE (128 + 13), as the Python documentation
recommends (stdout pointed at /dev/null so the final flush cannot fail).
Outputs written to files are complete or untouched either way (each is
replaced atomically).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from bench.console import exit_codes

EXIT_BROKEN_PIPE = exit_codes.BROKEN_PIPE


def run(main: Callable[[], int | None]) -> None:
    """sys.exit(main()), or EXIT_BROKEN_PIPE without a traceback when stdout's reader has gone."""
    try:
        status = main()
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(EXIT_BROKEN_PIPE)
    sys.exit(status)
