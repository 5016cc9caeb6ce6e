"""Data-parallel SGD over mx.distributed: the ranks, their launcher and the figures.

Each rank holds 1/N of the examples, computes its share of the full-batch
gradient, sums the shares with `mx.distributed.all_sum` and takes the same
step, so every rank ends with the same weights. The collective runs on MLX's
own backends (ring over TCP by default, MPI where installed); this package
only starts the ranks and tells them what to do.

  hostfile.py  hostfiles (the user's, mlx.launch format; the ring's MLX_HOSTFILE) and free ports
  protocol.py  the control messages between pytest and the ranks (JSON lines over TCP)
  launch_spec.py  what to launch: the ranks' command, mlx.launch and mpirun where installed
  processes.py  the ranks' processes: waiting, process groups, exit words, last output
  launcher.py  RankGroup: start N ranks, command them under a timeout, always stop them
  worker.py    the rank program
  runner.py    one benchmark case: calibrate and time rounds with the engine's loop
               (bench.engine.timing), profile, check correctness
  figures.py   steps/s per rank count, speedup and scaling efficiency, across machines
  options.py   the pytest plugin: --dist-ranks, --dist-backend, --dist-hostfile, --dist-timeout

Nothing here imports MLX at import time: `--mlx-blas` must choose MLX's BLAS
first (see bench.backends.mlx.blas).
"""
