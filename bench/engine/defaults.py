"""Every measuring default, defined once: round time, rounds, passes, the long-round rule, the blog's runs.

The command-line options of the main job (bench.session.options) and of the
release runner (bench.versions.dispatch) take their defaults from here, and so do
the records that carry them (bench.session.harness.Settings, bench.versions.paired.PairedSettings).
"""

from __future__ import annotations

ROUND_TIME_S = 0.02  # the target length of one round; K (steps per round) is calibrated to it
ROUNDS_PER_PASS = 3  # timed rounds of a case in one pass of the main job
# Passes of the main job over the grid, each case once per pass. Four, not three: what moves a figure here lasts
# as long as a process or a moment, so a fourth pass buys more than more rounds would. Measured on a 2-core AMD
# EPYC VM, default runs alternating with --passes 4 in pairs back to back, each alone (docs/figures/
# amd-epyc-vm-2026-12-07.md, "A fourth pass"): runs apart by 1.3-2.2% (steps/s) and 1.6-3.7% (x NumPy) at the
# median over cases in six pairs at four passes, 2.1-2.8% and 2.0-3.2% in three at three; the run took 3 min
# 33 s - 3 min 42 s against 2 min 52 s - 3 min 0 s, timed 54-55% against 51-53%.
PASSES = 4

# A round lasting more than LONG_ROUND_FACTOR x the round time is "long": a single step of a
# large problem, timed precisely enough in fewer rounds (LONG_ROUND_ROUNDS per pass in the
# main job, down to MIN_BLOCKS blocks per session in the release runner).
LONG_ROUND_FACTOR = 3
LONG_ROUND_ROUNDS = 3
MIN_BLOCKS = 3

# The blog's run (benchmarks/test_blog.py): 10,000 steps, or until training accuracy passes 95% (logistic).
BLOG_STEPS = 10_000
BLOG_STOP_ACCURACY = 0.95
BLOG_ROUNDS = 1  # timed runs of each blog configuration per pass
COLD_ROUNDS = 5  # fresh trainers whose first step a cold-start case times

# A new worker first builds its first case once and runs it for at least this many steps, or this
# long, whichever comes first, then drops it (bench.engine.runner.warm_up_process): in a new process
# MLX's first few calls each cost several milliseconds more (measured at 10,000 x 100, one step per
# round: 67-93 steps/s over the first 12 steps of a new worker, 148 after), and a process's first
# trainer runs slower for some cases however long it warms up. The case timed after it warms up as
# any other of its pass.
FRESH_WARMUP_STEPS = 16
FRESH_WARMUP_S = 0.5
# A case of a later pass warms up for this share of a round (at least one step): its worker is warm
# already and K is known. Measured before adopting it: docs/measurement.md, "How a case is timed", step 8.
# A case of pass 1 warms up in its calibration (bench.engine.timing.calibrate_round).
LATER_WARMUP_SHARE = 0.25
UNTIMED_CHECK_STEPS = 20  # steps of the untimed round before the checks (the CI correctness pass)
MEMORY_STEPS = 2  # steps under the backend's memory probe of a round-barrier case (others: the check's own steps)


def is_long_round(round_s: float, round_time_s: float) -> bool:
    """Whether a round lasts far longer than planned (the one long-round rule of the main job and the release runner)."""
    return round_s > LONG_ROUND_FACTOR * round_time_s
