"""The registered backends: one line each, name -> the package that defines it.

A package's ``__init__`` defines ``BACKEND``, an instance of a
bench.backends.base.Backend subclass, and imports its library only when a
case needs it. The order here is the order of the cases in a pass (NumPy, the
baseline every ratio is taken against, first).
"""

BACKENDS = {
    "numpy": "bench.backends.numpy",
    "mlx": "bench.backends.mlx",
    "torch": "bench.backends.torch",
    "jax": "bench.backends.jax",
}
