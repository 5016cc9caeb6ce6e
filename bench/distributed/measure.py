"""One data-parallel benchmark case under pytest-benchmark, by docs/measurement.md, "Measurement rules".

Order of work: start N ranks (each converts its shard to MLX: outside any
timer) -> time one step on its own (`first_step_s`) -> calibrate K (the
suite's calibrate(), then the fastest of a few runs of that K) -> measure the
control round trip -> time pass 1: R rounds in the parent, a round being "run K
steps" sent to every rank and every rank's "done" back, each step ending in
mx.eval (barrier "step") -> profile K steps, compute and all_sum timed apart ->
check the weights against the float64 reference and a single-process MLX run ->
stop the ranks (always, also when a rank fails). The ranks stay up, idle,
for the later passes (bench.engine.passes), which time R more rounds with the same K
right after the N = 1 case of the same model and size, so speedups are per
pass; the session's schedule stops them when it is done.

Only the rounds are inside the timer. Their time includes one control round
trip (saved as `control_rtt_s`, tens of microseconds on loopback; a round is
`--round-time`, 20 ms by default) and is the slowest rank's, because no rank
can finish a step before the all_sum has everyone's share.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass

import numpy as np

from bench.cases.case import Case
from bench.cases.checks import ERROR_BOUNDS, FULL_BATCH_CHECK_STEPS, CorrectnessError, relative_error
from bench.cases.datasets import make_problem
from bench.cases.identity import case_id, implementation_id
from bench.cases.sizes import BLOG_SIZE, Size
from bench.distributed.hostfile import Hostfile
from bench.distributed.launcher import LaunchSpec, RankGroup, mlx_launch_command, mpirun_available
from bench.engine.passes import Measurement, Schedule
from bench.engine.timing import calibrate, time_rounds
from bench.results import extra_info
from bench.session.benchmark_adapter import mark_used
from bench.session.harness import Settings, enqueue
from bench.stats.pairing import pass_ratio
from reference import reference_weights

# Tests only: "KIND:RANK" (see bench.distributed.rank) makes that rank of every
# case that has it crash or hang, to prove a failing case ends cleanly.
FAULT_ENV = "MLX_SGD_BENCH_DIST_FAULT"
VARIANT = "data-parallel"
BARRIER = "step"
DTYPE = np.dtype(np.float32)
MODELS = ("linear", "logistic")
# Steps per round when timing is disabled (the CI correctness pass): enough to run
# every command once; correctness is checked on its own FULL_BATCH_CHECK_STEPS steps.
UNTIMED_STEPS = 2
# With the default `--sizes quick`: the blog's size, where one step is far too
# little work to share, and one where compute per step dwarfs the all_sum.
QUICK_SIZES = (BLOG_SIZE, Size(100_000, 100))


@dataclass(frozen=True)
class DistSettings:
    """The distributed options of the command line (bench.distributed.pytest_plugin)."""

    ranks: tuple[int, ...] = (1, 2)
    backend: str = "ring"
    hostfile: Hostfile | None = None
    timeout_s: float = 60.0
    mlx_blas: str = "bundled"

    @property
    def launcher(self) -> str:
        """'local' (the suite starts the ranks) or 'mlx.launch' (hostfile and MPI runs)."""
        return "local" if self.hostfile is None and self.backend == "ring" else "mlx.launch"


@dataclass(frozen=True)
class DistCase:
    """One data-parallel configuration: model x rank count x backend x device."""

    model: str
    n_ranks: int
    backend: str = "ring"
    device: str = "cpu"
    launcher: str = "local"

    def as_case(self) -> Case:
        """The single-process case whose step every rank runs on its shard."""
        return Case(self.model, "mlx", VARIANT, BARRIER, self.device)

    @property
    def id(self) -> str:
        """pytest id fragment, e.g. ``mlx-data-parallel-step-cpu-ring-2ranks``."""
        c = self.as_case()
        return implementation_id(c.backend, c.variant, c.barrier, c.device, None, None, self.backend, self.n_ranks)

    def case_id(self, size: Size) -> str:
        """Full readable id (bench.cases.identity), e.g. ``linear-mlx-data-parallel-step-cpu-ring-2ranks-n1000-d100``."""
        return case_id(self.model, self.id, size.n_examples, size.n_features)

    def baseline_key(self, size: Size) -> tuple:
        """What an N = 1 run must share with this one to be its scaling baseline."""
        return (self.model, size, self.backend, self.device, self.launcher)


def cases(devices: tuple[str, ...], dist: DistSettings) -> list[DistCase]:
    """Every case for the given devices: per model and device, the rank counts in increasing order."""
    return [
        DistCase(model, n, dist.backend, device, dist.launcher)
        for model in MODELS
        for device in devices
        for n in sorted(dist.ranks)  # N = 1 first: the later counts' scaling baseline
    ]


def sizes_for(sizes_option: str, grid: tuple[Size, ...]) -> tuple[Size, ...]:
    """The sizes to run: QUICK_SIZES for the default `--sizes quick`, else the user's grid."""
    return QUICK_SIZES if sizes_option.strip().lower() == "quick" else grid


def estimated_bytes(size: Size, n_ranks: int) -> int:
    """Memory a case needs on this machine, all ranks together, in bytes.

    Every rank makes the whole float32 problem and keeps its shard in MLX; the
    parent holds the problem, a float64 copy (reference) and an MLX copy (the
    single-process comparison).
    """
    elements = size.n_examples * size.n_features
    return elements * (4 * n_ranks + 4 + 4 + 8 + 4) + (n_ranks + 1) * 100 * 2**20


def skip_reason(case: DistCase, size: Size, dist: DistSettings, memory_budget: int | None) -> str | None:
    """Why a case cannot run here, or None."""
    from bench.backends.mlx import compat as mlx_compat

    if not mlx_compat.mlx_installed():
        return "mlx is not installed"
    if case.device == "gpu" and not mlx_compat.gpu_available():
        return "MLX has no GPU on this machine"
    if not mlx_compat.distributed_available(case.backend):
        return f"this MLX build has no {case.backend} distributed backend"
    if case.backend == "mpi" and not mpirun_available():
        return "the mpi backend needs mpirun on PATH (e.g. apt-get install openmpi-bin)"
    if case.launcher == "mlx.launch" and mlx_launch_command() is None:
        return "mlx.launch is not installed"
    if dist.hostfile is not None and case.n_ranks > len(dist.hostfile.hosts):
        return f"{case.n_ranks} ranks need {case.n_ranks} hosts; {dist.hostfile.path} lists {len(dist.hostfile.hosts)}"
    need = estimated_bytes(size, case.n_ranks) if dist.hostfile is None else estimated_bytes(size, 1)
    if memory_budget is not None and need > memory_budget:
        return (
            f"{size.id} on {case.n_ranks} ranks needs about {need / 2**30:.1f} GiB, "
            f"over the memory budget of {memory_budget / 2**30:.1f} GiB"
        )
    return None


def launch_spec(case: DistCase, size: Size, lr: float, dist: DistSettings, fault: str | None = None) -> LaunchSpec:
    """How to start the ranks of a case."""
    args = (
        "--model", case.model,
        "--examples", str(size.n_examples),
        "--features", str(size.n_features),
        "--lr", repr(lr),
        "--device", case.device,
        "--mlx-blas", dist.mlx_blas,
    )  # fmt: skip
    return LaunchSpec(case.n_ranks, args, case.backend, dist.hostfile, dist.timeout_s, fault)


def describe(case: DistCase, size: Size, steps_per_round: int, lr: float) -> dict:
    """The result schema's fields (bench.results.extra_info) and the distributed ones that do not depend on timing."""
    fields = extra_info.describe(
        case.as_case(),
        size,
        steps_per_round,
        lr,
        scenario="distributed",
        n_ranks=case.n_ranks,
        distributed_backend=case.backend,
    )
    # The model's work per step is all ranks' together (the all_sum's N-1 vector adds are negligible);
    # batch_size is the full batch, shared by all ranks: n / N examples each.
    fields["collective_bytes_per_step"] = size.n_features * DTYPE.itemsize  # the gradient each rank contributes
    fields["launcher"] = case.launcher
    return fields


def profile_figures(profiles: list[dict], steps_per_round: int) -> dict:
    """Compute and all_sum time per step from each rank's profiled run (means over ranks)."""
    compute = [p["compute_s"] / steps_per_round for p in profiles]
    collective = [p["collective_s"] / steps_per_round for p in profiles]
    mean_compute, mean_collective = float(np.mean(compute)), float(np.mean(collective))
    return {
        "compute_s_per_step": mean_compute,
        "collective_s_per_step": mean_collective,
        "collective_share": mean_collective / (mean_compute + mean_collective),
        "rank_compute_s_per_step": compute,
        "rank_collective_s_per_step": collective,
        "profiled_steps_per_s": steps_per_round / max(p["elapsed_s"] for p in profiles),
    }


def check_weights(group: RankGroup, case: DistCase, size: Size, lr: float, steps: int = FULL_BATCH_CHECK_STEPS) -> dict:
    """Run `steps` steps from w0 on all ranks; compare with the float64 reference and one process.

    A data-parallel step is a full-batch step (each rank's gradient of its shard, summed), so it is
    checked on as many steps as the grid's full-batch cases (bench.cases.checks.FULL_BATCH_CHECK_STEPS).

    Raises CorrectnessError when a rank's weights are off the float64
    reference, off a single-process MLX run of the same steps, or when the
    ranks disagree with one another (the all_sum gives every rank the same sum).
    """
    from bench.backends import make_trainer

    problem = make_problem(case.model, size)
    group.reset()
    group.run(steps)
    rank_weights = group.weights()
    expected = reference_weights(case.model, problem.X, problem.y, problem.w0, lr, steps)
    single = make_trainer(Case(case.model, "mlx", "analytic", BARRIER, case.device), problem, lr)
    single.run(steps)
    single_weights = single.weights()
    errors = [relative_error(w, expected) for w in rank_weights]
    divergence = max(relative_error(w, rank_weights[0]) for w in rank_weights)
    single_diff = max(relative_error(w, single_weights) for w in rank_weights)
    bound = ERROR_BOUNDS[DTYPE]
    compared = (
        ("the float64 reference", max(errors)),
        ("a single-process MLX run", single_diff),
        ("rank 0", divergence),
    )
    for label, value in compared:
        if not value <= bound:  # also catches NaN
            raise CorrectnessError(
                f"{case.case_id(size)}: weights after {steps} data-parallel steps differ from {label} "
                f"by {value:.3g} (relative), bound {bound:g}"
            )
    return {
        "check_steps": steps,
        "max_rel_error": max(errors),
        "error_bound": bound,
        "single_process_rel_diff": single_diff,
        "rank_divergence": divergence,
        "ranks_identical": all(np.array_equal(w, rank_weights[0]) for w in rank_weights),
    }


def scaling(case: DistCase, size: Size, measurement: Measurement, schedule: Schedule) -> dict:
    """Speedup and scaling efficiency against this session's N = 1 run of the same case, pass by pass.

    speedup = steps/s at N / steps/s at N = 1, taken within each pass (the two
    ran next to each other) and summarised as the median over passes with a
    95% interval built like every other ratio's (bench.stats.intervals: a t
    interval over the per-pass ratios, with the session's between-run term for
    ratios, bench.stats.run_terms); scaling_efficiency = speedup / N (1.0: N ranks
    are N times as fast; strong scaling, the problem stays the same). None
    where no N = 1 run of the case is in this session; the report can then
    pair saved results itself (bench.distributed.scaling).
    """
    none = {"speedup": None, "speedup_ci_low": None, "speedup_ci_high": None, "scaling_efficiency": None}
    base = schedule.by_id(DistCase(case.model, 1, case.backend, case.device, case.launcher).case_id(size))
    if base is None:
        return {**none, "baseline_steps_per_s": None}
    # steps/s ratio per pass = the baseline's step time over this case's
    figure = {"backend": case.backend, "n_examples": size.n_examples, "n_features": size.n_features}
    term = schedule.run_terms.for_figure("ratio", figure)
    ratio = pass_ratio(base.pass_step_times(), measurement.pass_step_times(), term)
    if ratio is None:
        return {**none, "baseline_steps_per_s": None}
    return {
        "speedup": ratio.ratio,
        "speedup_ci_low": ratio.low if math.isfinite(ratio.low) else None,
        "speedup_ci_high": ratio.high if math.isfinite(ratio.high) else None,
        "scaling_efficiency": ratio.ratio / case.n_ranks,
        "baseline_steps_per_s": base.steps_per_round / base.figures.median,
    }


def calibrate_steps(group: RankGroup, target_s: float, probes: int = 3) -> int:
    """K (steps per round) for rounds of about `target_s`, robust to a busy machine.

    The suite's calibrate() warms up (a new ring's first exchanges and MLX's
    first allocations are slow) and gives a first K; the step time is then the
    fastest of a few runs of that K. A rank descheduled during a run stalls
    every rank (the all_sum waits for it), and a K taken from such a run would
    give rounds of a single step, where the control round trip counts.
    """
    steps_per_round = calibrate(group.run, target_s)
    times = time_rounds(lambda: group.run(steps_per_round), probes)
    return max(1, round(target_s * steps_per_round / min(times)))


def injected_fault(case: DistCase) -> str | None:
    """The fault FAULT_ENV asks for, where its rank exists in this case (tests only)."""
    spec = os.environ.get(FAULT_ENV, "").strip()
    rank = spec.partition(":")[2]
    if not spec or (rank.isdigit() and int(rank) >= case.n_ranks):
        return None
    return spec


def run_distributed_case(
    benchmark, case: DistCase, size: Size, settings: Settings, dist: DistSettings, fault: str | None = None
) -> None:
    """Measure pass 1 of one case, record its extra_info and queue its later passes; raises DistributedError or CorrectnessError."""
    fault = fault or injected_fault(case)
    # MLX's ring all_sum spins while it waits for a peer, so every rank needs a core of
    # its own: the machine's load before the ranks start says how far that held.
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    spec = launch_spec(case, size, settings.lr, dist, fault)
    timed = benchmark.enabled
    # The group stays up for the later passes (its ranks wait on their control socket,
    # idle, between them) and is stopped when the session's schedule is done with it.
    ranks = contextlib.ExitStack()
    group = ranks.enter_context(RankGroup(spec))
    try:
        start = time.perf_counter()
        group.run(1)  # first step: graph building, first-touch page faults, the ring's first exchange
        first_step_s = time.perf_counter() - start
        # --steps-per-round fixes K, as for the grid cases.
        steps_per_round = (
            (settings.steps_per_round or calibrate_steps(group, settings.round_time_s)) if timed else UNTIMED_STEPS
        )
        rtt = group.ping() if timed else None
        benchmark.group = f"{case.model}-{size.id}-distributed"
        group.run(steps_per_round)  # warm-up round
        times = time_rounds(lambda: group.run(steps_per_round), settings.rounds if timed else 1)
        if timed and settings.schedule is not None:
            settings.schedule.add_phases({"rounds": sum(times)})  # the session's time breakdown
        profiles = group.profile(steps_per_round)
        check = check_weights(group, case, size, settings.lr)
        ready, startup_s = group.ready_info, group.startup_s
    except BaseException:
        ranks.close()
        raise

    info = describe(case, size, steps_per_round, settings.lr)
    info.update(
        first_step_s=first_step_s,
        startup_s=startup_s,
        rank_examples=[r["stop"] - r["start"] for r in ready],
        rank_init_s=[r["init_s"] for r in ready],
        hosts=sorted({h.ssh for h in dist.hostfile.first(case.n_ranks).hosts}) if dist.hostfile else ["127.0.0.1"],
        load_average_1m_before=load_before,
    )
    info.update(profile_figures(profiles, steps_per_round))
    info.update(check)
    benchmark.extra_info.update(info)
    if not timed:
        ranks.close()
        mark_used(benchmark)
        return

    def time_pass() -> list[float]:
        """One more pass with pass 1's K on the same ranks: a warm-up round, then the rounds."""
        group.run(steps_per_round)
        return time_rounds(lambda: group.run(steps_per_round), settings.rounds)

    def finish(measurement: Measurement, schedule: Schedule) -> dict:
        median = measurement.figures.median
        return {"control_rtt_s": rtt, "control_share": rtt / median, **scaling(case, size, measurement, schedule)}

    measurement = Measurement(
        info["case_id"],
        benchmark,
        steps_per_round,
        settings.rounds,
        time_pass=time_pass,
        finish=finish,
        close=ranks.close,
    )
    measurement.start(times)
    enqueue(measurement, settings)
