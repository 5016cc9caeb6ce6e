"""Cold start: the first step of a new trainer (tracing, mx.compile, page faults), saved as phase "cold" rows."""

from bench.harness import run_cold_case

SCENARIO = "cold"
MODELS = ("linear", "logistic", "mlp")


def test_cold_start(benchmark, case, problem, settings):
    run_cold_case(benchmark, case, problem, settings)
