"""Data-parallel SGD over mx.distributed: the ranks, their launcher and the figures.

Each rank holds 1/N of the examples, computes its share of the full-batch
gradient, sums the shares with `mx.distributed.all_sum` and takes the same
step, so every rank ends with the same weights. The collective runs on MLX's
own backends (ring over TCP by default, MPI where installed); this package
only starts the ranks and tells them what to do.

Its modules, one line each: docs/extending.md, "Layout".

Nothing here imports MLX at import time: `--mlx-blas` must choose MLX's BLAS
first (see bench.backends.mlx.blas).
"""
