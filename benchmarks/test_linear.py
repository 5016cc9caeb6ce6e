"""Linear regression, loss 1/(2n) ||Xw - y||^2: MLX variants against NumPy over the size grid."""

from bench.session.harness import run_case

MODEL = "linear"


def test_linear(benchmark, case, size, settings):
    run_case(benchmark, case, size, settings)
