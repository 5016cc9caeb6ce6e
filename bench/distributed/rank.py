"""One rank of the data-parallel SGD benchmark.

Started by bench.distributed.launcher, either directly (local runs: the
launcher sets MLX_RANK and MLX_HOSTFILE) or through mlx.launch (a user's
hostfile). The rank connects to the parent's control address, starts
mx.distributed, builds its shard of the seeded problem (every rank makes the
same bytes with bench.cases.datasets and keeps rows shard_bounds(rank)), then answers
the requests of bench.distributed.control until told to quit.

A step: the rank's share of the full-batch gradient, X_r^T f(X_r w) / n with
the global n, summed over ranks by mx.distributed.all_sum (that sum is the
full-batch gradient), then w -= lr * g on every rank alike.

    python -m bench.distributed.rank --control 127.0.0.1:PORT --model linear \\
        --examples 4000 --features 50 --ranks 2 [--backend ring] [--device cpu]

`--inject-fault KIND:RANK` is for the suite's own tests: it makes one rank (or
"all") crash or hang, to prove that the launcher ends the run cleanly.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import time
import traceback

from bench.distributed import control
from bench.engine import protocol
from bench.engine.lifetime import watch_parent

FAULT_KINDS = ("crash", "hang", "crash-at-start", "hang-at-start", "no-allreduce")
# Exit status of a rank that crashed on purpose (the tests look for it).
INJECTED_CRASH_STATUS = 3


def parse_args(argv=None) -> argparse.Namespace:
    """The rank's command line (written by the launcher)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--control", required=True, help="HOST:PORT the parent listens on")
    parser.add_argument("--model", required=True, choices=("linear", "logistic"))
    parser.add_argument("--examples", type=int, required=True)
    parser.add_argument("--features", type=int, required=True)
    parser.add_argument("--ranks", type=int, required=True, help="the group size the parent expects")
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--backend", default="ring", choices=("ring", "mpi"))
    parser.add_argument("--device", default="cpu", choices=("cpu", "gpu"))
    parser.add_argument("--mlx-blas", default="bundled", help="as pytest's --mlx-blas")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to reach the parent")
    parser.add_argument(
        "--inject-fault", default=None, help="tests only: KIND:RANK, KIND one of " + ", ".join(FAULT_KINDS)
    )
    return parser.parse_args(argv)


class Fault:
    """A fault injected on purpose (tests only): what, on which rank."""

    def __init__(self, spec: str | None):
        self.kind, self.rank = None, None
        if spec:
            kind, _, rank = spec.partition(":")
            if kind not in FAULT_KINDS:
                raise SystemExit(f"--inject-fault: unknown kind {kind!r}; known: {', '.join(FAULT_KINDS)}")
            self.kind, self.rank = kind, (rank or "all")

    def hits(self, kind: str, rank: int | None) -> bool:
        """Whether this fault is `kind` and applies to `rank`."""
        return self.kind == kind and (self.rank == "all" or (rank is not None and self.rank == str(rank)))

    def strike(self, phase: str, rank: int | None) -> None:
        """Crash or hang here if the fault says so for this phase ('start' or 'run')."""
        suffix = "" if phase == "run" else f"-at-{phase}"
        if self.hits("crash" + suffix, rank):
            print(f"injected fault: rank {rank} crashes ({phase})", file=sys.stderr, flush=True)
            os._exit(INJECTED_CRASH_STATUS)  # abrupt, as a segfault: no message to the parent
        if self.hits("hang" + suffix, rank):
            print(f"injected fault: rank {rank} hangs ({phase}) and ignores SIGTERM", file=sys.stderr, flush=True)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # as stuck native code would: only SIGKILL ends it
            while True:
                time.sleep(3_600)


def env_rank() -> int | None:
    """This process's rank as its launcher announced it (ring: MLX_RANK; MPI: its own variables)."""
    for name in ("MLX_RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK"):
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return None


class DataParallelSGD:
    """Full-batch gradient descent on this rank's shard; gradients summed over the group."""

    def __init__(self, args: argparse.Namespace, group, all_reduce: bool = True):
        import mlx.core as mx

        from bench.backends.mlx import compat
        from bench.backends.mlx.linear import GRADIENTS
        from bench.cases.datasets import make_problem
        from bench.cases.sizes import Size

        self.mx, self.group, self.lr, self.all_reduce = mx, group, args.lr, all_reduce
        self.all_sum = compat.distributed_all_sum
        self.device = compat.device(args.device)
        problem = make_problem(args.model, Size(args.examples, args.features))
        self.start, self.stop = control.shard_bounds(args.examples, group.size(), group.rank())
        with mx.stream(self.device):
            self.X = mx.array(problem.X[self.start : self.stop])
            self.y = mx.array(problem.y[self.start : self.stop])
            self.w0 = mx.array(problem.w0)
            mx.eval(self.X, self.y, self.w0)  # conversion stays outside every timer
        self.grad = GRADIENTS[args.model]
        # The global n: each rank's share is X_r^T f(X_r w) / n, and their sum is the full gradient.
        self.inv_n = 1.0 / args.examples
        self.reset()

    def reset(self) -> None:
        """Back to the shared start point w0."""
        self.w = self.w0
        self.mx.eval(self.w)

    def _share(self, w):
        return self.grad(w, self.X, self.y, self.inv_n)

    def _reduce(self, g):
        return self.all_sum(g, self.group) if self.all_reduce else g

    def run(self, steps: int) -> None:
        """`steps` steps, each ending in mx.eval of the weights (barrier "step")."""
        mx, w = self.mx, self.w
        with mx.stream(self.device):
            for _ in range(steps):
                w = w - self.lr * self._reduce(self._share(w))
                mx.eval(w)
        self.w = w

    def profile(self, steps: int) -> dict:
        """`steps` steps with a barrier between the local gradient and the all_sum.

        The extra mx.eval separates compute from the collective (so each can be
        timed) but costs a barrier per step and stops MLX from overlapping them;
        the parent reports the unprofiled steps/s and this split side by side.
        Collective time includes waiting for the slowest rank to arrive.
        """
        mx, w, clock = self.mx, self.w, time.perf_counter
        compute = collective = 0.0
        start = clock()
        with mx.stream(self.device):
            for _ in range(steps):
                t0 = clock()
                g = self._share(w)
                mx.eval(g)
                t1 = clock()
                g = self._reduce(g)
                mx.eval(g)
                t2 = clock()
                w = w - self.lr * g
                mx.eval(w)
                compute += (t1 - t0) + (clock() - t2)
                collective += t2 - t1
        self.w = w
        return {"compute_s": compute, "collective_s": collective, "elapsed_s": clock() - start}

    def weights(self) -> list[float]:
        """This rank's weights as floats (float32 values, exact in JSON)."""
        import numpy as np

        return np.array(self.w, dtype=np.float32).tolist()


def serve(channel: control.Channel, trainer: DataParallelSGD, fault: Fault, rank: int) -> None:
    """Answer the parent's requests (the worker protocol, bench.engine.protocol) until it says quit or goes away."""

    def run(request: dict) -> dict:
        fault.strike("run", rank)
        start = time.perf_counter()
        trainer.run(int(request["steps"]))
        return {"steps": request["steps"], "elapsed_s": time.perf_counter() - start}

    handlers = {
        "run": run,
        "profile": lambda request: {"steps": request["steps"], **trainer.profile(int(request["steps"]))},
        "reset": lambda request: trainer.reset() or {},
        "weights": lambda request: {"w": trainer.weights()},
        "ping": lambda request: {},
    }
    protocol.serve(handlers, channel.reader, channel.writer, describe_error=control.error_line)


def main(argv=None) -> int:
    """Run one rank; the exit status is 0 after a clean quit."""
    args = parse_args(argv)
    watch_parent()  # a killed pytest or launcher leaves no rank behind (bench.engine.lifetime)
    fault = Fault(args.inject_fault)
    rank = env_rank()
    channel = control.Channel(args.control, args.timeout)
    token = os.environ.pop(control.TOKEN_ENV, "")  # not on the command line; not passed on to MLX's children
    channel.send("hello", pid=os.getpid(), rank=rank, host=socket.gethostname(), token=token)
    try:
        fault.strike("start", rank)
        if args.mlx_blas != "bundled":  # before MLX is imported (see bench.backends.mlx.blas)
            from bench.backends.mlx.blas import select_mlx_blas

            select_mlx_blas(args.mlx_blas)
        from bench.backends.mlx.compat import distributed_init

        if args.ranks == 1:
            # One rank has no peer to reach: a size-1 group, whose all_sum is a copy. mlx.launch
            # gives a single host an empty MLX_HOSTFILE, which the ring backend cannot parse.
            for name in ("MLX_HOSTFILE", "MLX_RANK"):
                os.environ.pop(name, None)
        start = time.perf_counter()
        group = distributed_init(args.backend, strict=args.ranks > 1)
        init_s = time.perf_counter() - start
        if group.size() != args.ranks:
            raise RuntimeError(f"mx.distributed formed a group of {group.size()}, expected {args.ranks}")
        rank = group.rank()
        trainer = DataParallelSGD(args, group, all_reduce=not fault.hits("no-allreduce", rank))
        channel.send(
            "ready",
            rank=rank,
            size=group.size(),
            init_s=init_s,
            start=trainer.start,
            stop=trainer.stop,
            backend=args.backend,
        )
        serve(channel, trainer, fault, rank)
    except Exception as error:  # tell the parent in one line; the traceback goes to this rank's log
        traceback.print_exc()
        kind = control.ADDRESS_IN_USE if control.is_address_in_use(error) else "error"
        try:
            channel.send("error", kind=kind, message=control.error_line(error))
        except OSError:
            pass
        return 1
    finally:
        channel.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
