"""Logistic regression, mean binary cross-entropy: MLX variants against NumPy over the size grid."""

from bench.session.harness import run_case

MODEL = "logistic"


def test_logistic(benchmark, case, size, settings):
    run_case(benchmark, case, size, settings)
