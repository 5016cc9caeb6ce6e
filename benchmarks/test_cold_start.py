"""Cold start: the first step of a new trainer (tracing, mx.compile, page faults), saved as phase "cold" rows."""

from bench.session.harness import run_case

SCENARIO = "cold"
MODELS = ("linear", "logistic", "mlp")


def test_cold_start(benchmark, case, size, settings):
    run_case(benchmark, case, size, settings, scenario="cold")
