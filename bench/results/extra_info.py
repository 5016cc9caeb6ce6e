"""The result schema: the extra_info fields every saved case carries, built here and nowhere else.

pytest-benchmark's JSON stays standard (``pytest-benchmark compare`` reads it);
each benchmark's ``extra_info`` carries the fields below, and ``machine_info``
the environment (bench.engine.run_environment). The report (bench.report.schema) reads
only these fields, and knows older files by their ``schema_version``:

  none  stats hold round times (one pass); ids and labels as the report computes them
  2     stats are per step (``ops`` is steps/s); raw round times in ``round_times_s``
        with their pass in ``round_pass``
  3     ``case_id`` in the one identity of bench.cases.identity (also for data-parallel
        cases); each backend's machine_info fields prefixed with its name
"""

from __future__ import annotations

from bench.cases import models
from bench.cases.case import Case
from bench.cases.identity import case_id_of
from bench.cases.sizes import Size

SCHEMA_VERSION = 3

# A benchmark without these extra_info fields is not one of this suite's.
REQUIRED_FIELDS = (
    "model",
    "backend",
    "variant",
    "device",
    "dtype",
    "barrier",
    "n_examples",
    "n_features",
    "steps_per_round",
)

# What makes two saved rows "the same case", whatever run, machine or version they
# come from. `hidden` (MLP width), `batch_size` and `n_ranks` joined the schema
# later; IDENTITY_DEFAULTS say what a result without them measured.
CASE_KEYS = (
    "scenario",
    "phase",
    "model",
    "backend",
    "variant",
    "device",
    "dtype",
    "barrier",
    "n_examples",
    "n_features",
    "batch_size",
    "hidden",
    "n_ranks",
    "distributed_backend",
    # The BLAS under MLX's CPU matmuls: a run with --mlx-blas openblas is another case.
    "mlx_blas",
)

# Defaults for optional identity fields: a linear or logistic model has no hidden
# layer (0), a single process is one rank with no distributed backend, a result
# without a phase or scenario was a warm grid run. batch_size defaults to
# n_examples (full batch), which depends on the row.
IDENTITY_DEFAULTS = {
    "scenario": "grid",
    "phase": "warm",
    "hidden": 0,
    "n_ranks": 1,
    "distributed_backend": "",
    "mlx_blas": "default",
}


def describe(
    case: Case,
    size: Size,
    steps_per_round: int,
    lr: float,
    scenario: str = "grid",
    phase: str = "warm",
    n_ranks: int = 1,
    distributed_backend: str | None = None,
) -> dict:
    """The schema's fields of a case that do not depend on timing.

    ``batch_size`` is the examples per step (n_examples for full batch); a
    data-parallel case (n_ranks > 1 or a distributed backend) splits that batch
    over its ranks, and its flops and bytes are all ranks' together.
    """
    n, d = size.n_examples, size.n_features
    b, h, barrier = case.batch_rows(size), case.hidden or 0, case.barrier
    fields = {
        "model": case.model,
        "backend": case.backend,
        "variant": case.variant,
        "device": case.device,
        "dtype": case.dtype.name,
        "barrier": barrier,
        "n_examples": n,
        "n_features": d,
        "batch_size": b,
        "hidden": case.hidden,
        "learning_rate": lr,
        "steps_per_round": steps_per_round,
        "flops_per_step": models.flops_per_step(case.model, b, d, barrier, hidden=h),
        "bytes_per_step": models.bytes_per_step(
            case.model, b, d, case.dtype.itemsize, barrier, hidden=h, gathered=case.batch_size is not None
        ),
        "phase": phase,
        "scenario": scenario,
        "schema_version": SCHEMA_VERSION,
    }
    if n_ranks != 1 or distributed_backend:
        fields.update(n_ranks=n_ranks, distributed_backend=distributed_backend or "")
    fields["case_id"] = case_id_of(fields)
    return fields
