"""The columns the report reads and writes, and what identifies a benchmark case.

DESIGN.md's result schema, seen from the report: the extra_info fields a saved
benchmark must carry to be one of ours, the fields that name a case (so the
same case can be found in another run, machine or MLX version), and the
defaults that stand in for fields older results do not have yet.
"""

from __future__ import annotations

import pandas as pd

# A benchmark without these extra_info fields is not one of this suite's.
REQUIRED_EXTRA_INFO = (
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

# What makes two rows "the same case", whatever run, machine or version they
# come from. `hidden` (MLP width), `batch_size` and `n_ranks` joined the schema
# later; their defaults below say what a result without them measured.
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

# Defaults for optional identity fields: a linear or logistic model has no
# hidden layer (0), a single process is one rank with no distributed backend,
# a result without a phase or scenario was a warm grid run. batch_size
# defaults to n_examples (full batch) in the loader, because it depends on the row.
IDENTITY_DEFAULTS = {
    "scenario": "grid",
    "phase": "warm",
    "hidden": 0,
    "n_ranks": 1,
    "distributed_backend": "",
    "mlx_blas": "default",
}

# Columns of each run (one saved file), prefixed to every row of the tidy table.
RUN_COLUMNS = ("machine", "node", "results_folder", "source_file", "run_datetime", "commit_id", "commit_dirty")

# machine_info fields (DESIGN rule 7), flattened to one column each.
MACHINE_COLUMNS = (
    "mlx_version",
    "numpy_version",
    "python_version",
    "cpu_model",
    "usable_cpus",
    "cpu_count",
    "memory_gib",
    "system",
    "os_release",
    "arch",
    "mlx_default_device",
    "mlx_gpu_backend",
    "mlx_device_info",
    "mlx_blas",
    "mlx_blas_library",
    "mlx_blas_source",
    "numpy_blas",
    "numpy_blas_threads",
    "numpy_blas_library",
    "loaded_blas_libraries",
    "env",
    "bench_rounds",
    "bench_round_time_s",
    "memory_bandwidth_gb_s",
    "peak_gflops_f32",
)

# Figures the report computes for every row (bench.report.figures).
FIGURE_COLUMNS = (
    "n_rounds",
    "has_raw_times",
    "median_round_s",
    "q1_round_s",
    "q3_round_s",
    "iqr_round_s",
    "iqr_pct_of_median",
    "n_passes",
    "pass_spread_pct",
    "median_step_s",
    "steps_per_s",
    "samples_per_s",
    "gflops_per_s",
    "gb_per_s",
    "arithmetic_intensity",
    "roofline_gflops_per_s",
    "roofline_fraction",
    "bandwidth_fraction",
    "unstable",
)

# Columns that hold Python objects (raw round times and their pass labels), never written to CSV.
RAW_TIMES = "round_times_s"
ROUND_PASS = "round_pass"
OBJECT_COLUMNS = (RAW_TIMES, ROUND_PASS)


def case_label(row: pd.Series | dict, with_size: bool = False) -> str:
    """Readable case name, e.g. ``mlx-compiled-step-cpu`` (``-b32``/``-h64`` when they apply)."""
    label = f"{row['backend']}-{row['variant']}-{row['barrier']}-{row['device']}"
    if int(row["batch_size"]) != int(row["n_examples"]):
        label += f"-b{int(row['batch_size'])}"
    if int(row["hidden"]):
        label += f"-h{int(row['hidden'])}"
    if row["distributed_backend"]:
        label += f"-{row['distributed_backend']}"
    if int(row["n_ranks"]) != 1 or row["distributed_backend"]:
        label += f"-r{int(row['n_ranks'])}"
    if with_size:
        label += f"-{size_label(row)}"
    return label


def size_label(row: pd.Series | dict) -> str:
    """``n1000-d100``: the suite's size id."""
    return f"n{int(row['n_examples'])}-d{int(row['n_features'])}"


def case_labels(frame: pd.DataFrame, with_size: bool = False) -> pd.Series:
    """case_label for every row of a frame (an empty frame gives an empty Series)."""
    if frame.empty:
        return pd.Series([], index=frame.index, dtype=object)
    return frame.apply(case_label, axis=1, with_size=with_size)
