"""The measurement engine: every timed pass of a case is a job that a worker process runs.

One job format (bench.engine.jobs), one timing loop and one calibration of
the steps per round (bench.engine.timing), one way to run a job in a process
(bench.engine.runner), one worker server and one client that starts and talks
to it (bench.engine.worker, bench.engine.client), and one isolation policy
that decides which worker runs which job (bench.engine.isolation). The main
job, its re-measure and the release runner all measure through it; the
data-parallel runner shares its timing loop and calibration (its ranks are
processes of their own, started by bench.distributed.launcher).

docs/measurement.md, "How a case is timed", "Isolation".
"""
