"""The exit statuses of every command of the suite, in one table (docs/reports.md, "Exit statuses").

``python -m bench.report``, ``python -m bench.versions`` (all its modes),
``mlx-sgd-bench`` and its other subcommands return these and no others, so a
CI job reads one number the same way whichever command it ran:

  0    OK            done (the self-test: it passed)
  1    REGRESSION    a regression was found (with --fail-on-regression; the self-test: a false one)
  2    USAGE         a bad command line or bad input: nothing usable to report, an output that
                     cannot be written, a --results folder already used
  3    INCOMPLETE    the release runner could not finish: a release did not install, a run or a
                     worker failed, the disk filled (what was measured is saved)
  4    INCONCLUSIVE  no regression, but the NumPy controls moved (with --fail-on-regression;
                     the self-test: always)
  5    UNFIT         the self-test missed the planted slowdown: too noisy to gate a release
  130  INTERRUPTED   Ctrl-C (128 + SIGINT), what was saved so far is kept
  141  BROKEN_PIPE   the reader of the output went away (128 + SIGPIPE), e.g. piped into head
"""

from __future__ import annotations

OK = 0
REGRESSION = 1
USAGE = 2
INCOMPLETE = 3
INCONCLUSIVE = 4
UNFIT = 5
INTERRUPTED = 130
BROKEN_PIPE = 141

# name -> status, for the docs' table and its test
ALL = {
    "OK": OK,
    "REGRESSION": REGRESSION,
    "USAGE": USAGE,
    "INCOMPLETE": INCOMPLETE,
    "INCONCLUSIVE": INCONCLUSIVE,
    "UNFIT": UNFIT,
    "INTERRUPTED": INTERRUPTED,
    "BROKEN_PIPE": BROKEN_PIPE,
}
