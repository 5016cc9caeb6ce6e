"""A one-hidden-layer MLP classifier (ReLU, softmax cross-entropy) trained by SGD.

The blog's open question: what happens when the matrix work gets heavier?
MLX as its users write it (mlx.nn, nn.value_and_grad, optimizers.SGD; plain and
mx.compile'd) against NumPy's hand-written forward and backward passes, over
the size grid x hidden widths (--hidden) x mini-batch and full batch.
"""

from bench.session.harness import run_case

MODEL = "mlp"


def test_mlp(benchmark, case, size, settings):
    run_case(benchmark, case, size, settings)
