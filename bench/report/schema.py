"""The columns the report reads and writes, what identifies a benchmark case, and how a case is named.

The result schema is bench.results.extra_info's, seen from the report: the extra_info
fields a saved benchmark must carry to be one of ours (REQUIRED_EXTRA_INFO),
the fields that name a case so that it can be found in another run, machine
or MLX version (CASE_KEYS), and the defaults that stand in for fields older
results lack (IDENTITY_DEFAULTS). Cases are named as bench.cases.identity names
them everywhere else (pytest ids, the saved ``case_id``), so that a row of any
CSV can be grepped against ``pytest -k``: ``case_label`` is that id without
its model (and, unless asked, without its size). Backends are names in the
data; BACKEND_LABELS only says how a reader sees the ones the suite knows.
"""

from __future__ import annotations

import pandas as pd

from bench.backends import all_backends
from bench.backends.registry import BACKENDS

from bench.cases.identity import case_id_of, size_id
from bench.stats.pairing import BASELINE_BACKEND
from bench.stats.roofline import LIMIT_FIELDS
from bench.results.extra_info import CASE_KEYS, IDENTITY_DEFAULTS, REQUIRED_FIELDS  # noqa: F401  (re-exported: the report reads them here)

# The result schema is bench.results.extra_info's (the suite writes it there); the report
# keeps its own names for the same tuples.
REQUIRED_EXTRA_INFO = REQUIRED_FIELDS

# Columns of each run (one saved file), prefixed to every row of the tidy table.
RUN_COLUMNS = ("machine", "node", "results_folder", "source_file", "run_datetime", "commit_id", "commit_dirty")

# machine_info fields (docs/measurement.md, "Measurement rules", rule 7), flattened to one column each.
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
    *LIMIT_FIELDS,  # memory_bandwidth_gb_s, peak_gflops_f32, then each cache level's capacity and bandwidth
)

# machine_info fields of every registered backend are prefixed with its name
# (Backend.machine_info): the loader keeps each one it finds as a column, so a new
# backend's version and threads reach the report without a line here.
BACKEND_FIELD_PREFIXES = tuple(f"{name}_" for name in BACKENDS)

# Figures the report computes for every row (bench.report.row_figures).
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
    "working_set_bytes",
    "roofline_level",
    "roofline_bandwidth_gb_s",
    "roofline_gflops_per_s",
    "roofline_fraction",
    "bandwidth_fraction",
    "roofline_note",
    "unstable",
)

# Columns that hold Python objects (raw round times and their pass labels), never written to CSV.
RAW_TIMES = "round_times_s"
ROUND_PASS = "round_pass"
OBJECT_COLUMNS = (RAW_TIMES, ROUND_PASS)


def case_id(row: pd.Series | dict, trust_unversioned: bool = True) -> str:
    """The case's full id (bench.cases.identity): the saved ``case_id`` from schema 3 on, else computed from its fields.

    A row without any ``schema_version`` field is one of the report's own tables
    (speedup.csv, backends.csv...), whose ``case_id`` the loader has already made
    the identity: it is trusted, unless `trust_unversioned` is False (the loader,
    reading files saved before schema versions existed).
    """
    saved = row.get("case_id")
    if isinstance(saved, str) and saved:
        if "schema_version" not in row:
            if trust_unversioned:
                return saved
        elif pd.to_numeric(row.get("schema_version"), errors="coerce") >= 3:
            return saved
    # Older files named some cases otherwise (``-b256-h64``, ``-r2``, no ``-h64`` at all): the id is recomputed.
    return case_id_of(row)


def case_label(row: pd.Series | dict, with_size: bool = False) -> str:
    """The case's id without its model, e.g. ``mlx-nn-step-cpu-h64-b256`` (``-n1000-d100`` too with `with_size`)."""
    full, model = case_id(row), str(row["model"])
    if full.startswith(f"{model}-"):
        full = full[len(model) + 1 :]
    else:  # a saved id of another shape: the identity from the fields, never a half-stripped string
        full = implementation_id_of(row) + f"-{size_label(row)}"
    size = f"-{size_label(row)}"
    return full if with_size or not full.endswith(size) else full[: -len(size)]


def implementation_id_of(row: pd.Series | dict) -> str:
    """bench.cases.identity's implementation id (no model, no size) from a row's fields."""
    return case_id_of(row).removeprefix(f"{row['model']}-").removesuffix(f"-{size_label(row)}")


def size_label(row: pd.Series | dict) -> str:
    """``n1000-d100``: the suite's size id."""
    return size_id(row["n_examples"], row["n_features"])


# The fields a case's name is made of (bench.cases.identity), and what says whether a saved id can be used.
_NAME_FIELDS = (
    "case_id", "schema_version", "model", "backend", "variant", "barrier", "device",
    "n_examples", "n_features", "batch_size", "hidden", "n_ranks", "distributed_backend",
)  # fmt: skip


def _named(frame: pd.DataFrame, name, **kwargs) -> pd.Series:
    if frame.empty:
        return pd.Series([], index=frame.index, dtype=object)
    # Only the naming fields: building a Series of every column per row is most of the cost on wide tables.
    return frame[[c for c in _NAME_FIELDS if c in frame]].apply(name, axis=1, **kwargs).astype(object)


def case_labels(frame: pd.DataFrame, with_size: bool = False) -> pd.Series:
    """case_label for every row of a frame (an empty frame gives an empty Series)."""
    return _named(frame, case_label, with_size=with_size)


def case_ids(frame: pd.DataFrame, trust_unversioned: bool = True) -> pd.Series:
    """case_id for every row of a frame (an empty frame gives an empty Series)."""
    return _named(frame, case_id, trust_unversioned=trust_unversioned)


# How a reader sees the backends the suite knows; any other name is shown as it is.
# How a reader sees each registered backend (Backend.label), in the registry's order.
BACKEND_LABELS = {backend.name: backend.label for backend in all_backends()}
# The backend the suite is about (the baseline, BASELINE_BACKEND, is bench.stats.pairing's).
FOCUS_BACKEND = "mlx"
# Devices that are not the host CPU meet as one class: MLX's "gpu" is PyTorch's "cuda" or "mps", JAX's "cuda".
CPU_DEVICE, ACCELERATOR = "cpu", "accelerator"


def backend_label(name) -> str:
    """``torch`` -> ``PyTorch``; a name the report does not know is its own label."""
    return BACKEND_LABELS.get(str(name), str(name))


def backend_order(names) -> list[str]:
    """Backends in the suite's order (NumPy, MLX, PyTorch, JAX), any others after them by name."""
    known = list(BACKEND_LABELS)
    return sorted(set(map(str, names)), key=lambda n: (known.index(n) if n in known else len(known), n))


def device_class(device) -> str:
    """``cpu`` for the host CPU, ``accelerator`` for any other device (gpu, cuda, mps...)."""
    return CPU_DEVICE if str(device) == CPU_DEVICE else ACCELERATOR


def backend_versions(frame: pd.DataFrame) -> pd.Series:
    """Each row's own backend's version: its ``<backend>_version`` machine column (mlx_version, torch_version...)."""
    versions = pd.Series(None, index=frame.index, dtype=object)
    for name in frame["backend"].unique() if "backend" in frame else ():
        column = f"{name}_version"
        if column in frame:
            mine = frame["backend"] == name
            versions[mine] = frame.loc[mine, column]
    return versions


def peers_present(backends) -> bool:
    """Whether backends beside the baseline and the focus backend (PyTorch, JAX...) are in the data."""
    return bool(set(map(str, backends)) - {BASELINE_BACKEND, FOCUS_BACKEND})
