"""Saved pytest-benchmark JSON -> one tidy pandas table: one row per case per run.

Reads every ``*.json`` under the given folders (recursively; bench.report.inputs)
and the given files, keeps the benchmarks that carry this suite's ``extra_info`` (see
``schema.REQUIRED_EXTRA_INFO``) and skips everything else with a one-line
warning that names the file: an empty folder, a file that is not JSON or was
cut short, JSON of another tool, pytest-benchmark files of another suite.
Files are opened read-only; nothing read is ever changed. The release
runner's own records (``release-verdicts.json``, ``self-test.json``,
``history.json``; bench.report.records) are kept as they are, for the report to show.

Each row carries every ``extra_info`` field as saved (fields added later by the
suite pass through untouched), the run's date, commit and machine (its id:
host name/results folder, CPU model, logical CPUs and memory), the environment
fields of docs/results-schema.md, "Results files" flattened from ``machine_info``, and the
raw round times (``round_times_s``, a NumPy array, or None when the run did not
save them) with the pass of each round (``round_pass``).

Three schema versions are read (bench.results.extra_info). Since ``schema_version`` 2 the
saved pytest-benchmark ``stats`` are per step (so stock tools read steps/s) and
the raw round times sit in ``extra_info["round_times_s"]`` with
``round_pass``; files without a ``schema_version`` hold round times in
``stats.data``, all from one pass. From version 3 the saved ``case_id`` is the
one identity of bench.cases.identity and is kept; older files spelled some ids
otherwise (``-b256-h64``, ``-r2``, MLP ids without their width), so their
``case_id`` is recomputed from the fields: every row's id is the pytest id a
run of today's suite gives that case. Peer backends' machine_info fields
(``torch_version``, ``jax_version``...) become columns where a run has them.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bench.console.oneline import one_line
from bench.report.inputs import find_files, warn_stderr
from bench.report.records import HISTORY_KIND, RECORD_KINDS, RELEASE_VERDICTS_KIND, SELF_TEST_KIND, record_kind
from bench.report.schema import (
    BACKEND_FIELD_PREFIXES,
    CASE_KEYS,
    IDENTITY_DEFAULTS,
    RAW_TIMES,
    REQUIRED_EXTRA_INFO,
    ROUND_PASS,
    backend_versions,
    case_ids,
)
from bench.results.extra_info import SCHEMA_VERSION
from bench.stats.roofline import LIMIT_FIELDS, flat_limits
from bench.results.run_state import why_incomplete

# Whole-number fields: sizes, K, and the numeric parts of a case's identity.
_INTEGER_KEYS = ("n_examples", "n_features", "steps_per_round", "batch_size", "hidden", "n_ranks")
# Fields that must be whole numbers >= 1 for the figures to mean anything.
_POSITIVE_INTS = ("n_examples", "n_features", "steps_per_round")
_UNSAFE_NAME = re.compile(r"[/\\\x00-\x1f\x7f]")
MIN_TIME_S = 1e-9  # no step takes under a nanosecond: a shorter time is broken, its steps/s absurd or infinite


@dataclass
class Loaded:
    """What reading produced: the tidy table, the files used and the ones skipped."""

    frame: pd.DataFrame
    files: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    # The release runner's own records (docs/releases.md, "Compare MLX releases"), each with its "path".
    release_verdicts: list[dict] = field(default_factory=list)
    self_tests: list[dict] = field(default_factory=list)
    histories: list[dict] = field(default_factory=list)  # the release history (history.json), one per run


def _json_error(error: json.JSONDecodeError, text: bytes) -> str:
    """Say whether a document is cut short or not JSON at all."""
    # A cut-off file fails at its very end, or inside a string that never closes.
    truncated = error.pos >= len(text.rstrip()) - 1 or error.msg.startswith("Unterminated string")
    what = "truncated JSON" if truncated else "not JSON"
    return f"{what} ({error.msg.removesuffix(' at')} at line {error.lineno} column {error.colno})"


def _as_dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _scalar(value):
    """Keep numbers, strings, booleans and None; nested values become compact JSON text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def blas_kind(mlx_blas: dict) -> str:
    """MLX's BLAS as part of a case's identity: "default" (the wheel's own, or Accelerate,
    wherever its environment lies) or the file name of the library put in its place
    (--mlx-blas or LD_PRELOAD)."""
    source, library = str(mlx_blas.get("source") or ""), str(mlx_blas.get("library") or "")
    if "global scope" in source and library:
        return library.rsplit("/", 1)[-1]
    return "default"


def _cpu_count(info: dict):
    """Logical CPUs of the machine: ours, or py-cpuinfo's count that pytest-benchmark saves."""
    for value in (info.get("cpu_count"), _as_dict(info.get("cpu")).get("count")):
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _memory_gib(info: dict):
    """Physical memory in GiB (rounded to 0.1), or None when the run did not record it."""
    value = info.get("memory_total_bytes")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 2**64:
        return round(value / 2**30, 1)
    return None


def machine_identity(node: str, folder: str, columns: dict) -> str:
    """The machine id: host name/results folder, then CPU model, logical CPUs and memory where recorded.

    Two VMs of one host name with different CPUs or sizes are different machines
    and must never be compared as one.
    """
    parts = [str(columns["cpu_model"])] if columns.get("cpu_model") else []
    if columns.get("cpu_count"):
        parts.append(f"{columns['cpu_count']} CPUs")
    if columns.get("memory_gib"):
        parts.append(
            f"{columns['memory_gib']:.0f} GiB" if columns["memory_gib"] >= 1 else f"{columns['memory_gib']} GiB"
        )
    return f"{node}/{folder}" + (f" ({', '.join(parts)})" if parts else "")


def machine_columns(info: dict) -> dict:
    """The environment of rule 7 (docs/measurement.md, "Measurement rules") from a machine_info dict, one flat column per field (the peers' fields,
    every backend's fields, schema.BACKEND_FIELD_PREFIXES, where recorded)."""
    info = _as_dict(info)
    mlx_blas = _as_dict(info.get("mlx_blas"))
    pools = (
        [p for p in info.get("numpy_blas") or [] if isinstance(p, dict)]
        if isinstance(info.get("numpy_blas"), list)
        else []
    )
    numpy_pool = pools[0] if pools else {}  # bench.backends.numpy.blas_pools() lists NumPy's own pool first
    settings = _as_dict(info.get("bench_settings"))
    limits = _as_dict(info.get("machine_limits"))
    env = _as_dict(info.get("env"))
    libraries = info.get("loaded_blas_libraries")
    numpy_blas = " ".join(str(numpy_pool[k]) for k in ("internal_api", "version") if numpy_pool.get(k))
    # Peers' fields only where the run recorded them: a run without PyTorch gets no empty torch columns.
    columns = {
        "mlx_version": _scalar(info.get("mlx_version")),
        "numpy_version": _scalar(info.get("numpy_version")),
        "python_version": _scalar(info.get("python_version")),
        "cpu_model": _scalar(info.get("cpu_model") or _as_dict(info.get("cpu")).get("brand_raw")),
        "usable_cpus": _scalar(info.get("usable_cpus")),
        "cpu_count": _cpu_count(info),
        "memory_gib": _memory_gib(info),
        "system": _scalar(info.get("system")),
        "os_release": _scalar(info.get("release")),
        "arch": _scalar(info.get("machine")),
        "mlx_default_device": _scalar(info.get("mlx_default_device")),
        "mlx_gpu_backend": _scalar(info.get("mlx_gpu_backend")),
        "mlx_device_info": _scalar(info.get("mlx_device_info")),
        "mlx_blas": blas_kind(mlx_blas),
        "mlx_blas_library": _scalar(mlx_blas.get("library")),
        "mlx_blas_source": _scalar(mlx_blas.get("source")),
        "numpy_blas": numpy_blas or None,
        "numpy_blas_threads": _scalar(numpy_pool.get("num_threads")),
        "numpy_blas_library": _scalar(numpy_pool.get("filepath")),
        "loaded_blas_libraries": ";".join(map(str, libraries)) if isinstance(libraries, list) else _scalar(libraries),
        "env": ";".join(f"{k}={v}" for k, v in sorted(env.items())) or None,
        "bench_rounds": _scalar(settings.get("rounds")),
        "bench_round_time_s": _scalar(settings.get("round_time_s")),
        # memory's bandwidth, the peak, each cache level's capacity and bandwidth (NaN where not measured)
        **flat_limits(limits),
    }
    # Every backend's own fields (torch_version, jax_cpu_threads, ...), where a run recorded them.
    peers = {
        key: _scalar(value)
        for key, value in info.items()
        if key.startswith(BACKEND_FIELD_PREFIXES) and key not in columns and value is not None
    }
    return columns | peers


def _is_ours(info) -> bool:
    """Whether a benchmark's extra_info has this suite's fields, with usable sizes."""
    return _why_not_ours(info) is None


def _why_not_ours(info) -> str | None:
    """Why a benchmark's extra_info cannot be read as this suite's (one phrase), or None when it can."""
    if not isinstance(info, dict) or any(key not in info for key in REQUIRED_EXTRA_INFO):
        return f"without this suite's extra_info ({', '.join(REQUIRED_EXTRA_INFO[:3])}, ...)"
    version = info.get("schema_version")
    if version is not None and not (isinstance(version, int) and 1 <= version <= SCHEMA_VERSION):
        return f"of schema_version {version!r}; this report reads up to {SCHEMA_VERSION}"
    for key in (k for k in REQUIRED_EXTRA_INFO if k not in _INTEGER_KEYS):  # model, backend...: the case's name
        if not isinstance(info[key], str) or not info[key].strip():
            return f"with an invalid {key} ({info[key]!r}: a name was expected)"
        if _UNSAFE_NAME.search(info[key]):
            # The names make file names (plots) and table keys: a path separator or a control character is no name.
            return f"with an invalid {key} ({info[key]!r}: a name without '/', '\\' or control characters was expected)"
    for key in _INTEGER_KEYS:
        if key not in _POSITIVE_INTS and info.get(key) is None:
            continue  # optional (no batch size: full batch)
        if not _whole(info[key], 1 if key in _POSITIVE_INTS else 0):
            what = "positive" if key in _POSITIVE_INTS else "non-negative"
            return f"with an invalid {key} ({info[key]!r}: a {what} whole number was expected)"
    return None


def _whole(value, least: int) -> bool:
    """Whether `value` is a whole number from `least` up to 2**53 (exact as a float, and an int64 column)."""
    with contextlib.suppress(TypeError, ValueError, OverflowError):
        return least <= int(value) <= 2**53 and float(value) == int(value)
    return False


def _positive_array(data) -> np.ndarray | None:
    """A non-empty list of finite times of at least MIN_TIME_S as an array, else None."""
    if not isinstance(data, list) or not data:
        return None
    try:
        times = np.asarray(data, dtype=float)
    except (TypeError, ValueError):
        return None
    return times if times.ndim == 1 and np.all(np.isfinite(times) & (times >= MIN_TIME_S)) else None


def per_step_stats(info: dict) -> bool:
    """Whether a benchmark's saved stats describe one step (schema_version 2 on) rather than one round."""
    version = info.get("schema_version")
    return isinstance(version, int) and not isinstance(version, bool) and version >= 2


def _round_times(info: dict, stats: dict) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The raw round times in seconds and the pass of each, or None where they were not saved (or are unusable)."""
    if not per_step_stats(info):
        return _positive_array(stats.get("data")), None  # the old layout: round times, one pass
    times = _positive_array(info.get("round_times_s"))
    passes = _positive_array(info.get("round_pass"))
    if times is None:
        return None, None
    if passes is None or len(passes) != len(times) or np.any(passes != np.round(passes)):
        return times, None
    return times, passes.astype(int)


def _stat(stats: dict, key: str) -> float | None:
    """A positive, finite figure of pytest-benchmark's stats (a time: from MIN_TIME_S), or None: 0, NaN, inf are none."""
    value = stats.get(key)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    value = float(value)
    return value if np.isfinite(value) and value > 0 and value >= (0 if key == "rounds" else MIN_TIME_S) else None


def _parse(path: Path) -> tuple[object, str | None]:
    """(the JSON document, None) or (None, why it cannot be read)."""
    try:
        text = path.read_bytes()
    except OSError as error:
        return None, f"cannot read it ({error.strerror or error})"
    if not text.strip():
        return None, "empty file"
    try:
        doc = json.loads(text, parse_int=_integer)
    except UnicodeDecodeError:
        return None, "not JSON (not UTF-8 text)"
    except json.JSONDecodeError as error:
        return None, _json_error(error, text)
    except (ValueError, RecursionError) as error:
        return None, f"not JSON ({type(error).__name__})"
    return doc, None


MAX_INT_DIGITS = 300  # a float holds up to about 1.8e308: a longer integer overflows wherever it meets one


def _integer(digits: str) -> int | float:
    """A JSON integer; one too long for a float becomes inf, which every check of a figure refuses.

    No saved field of this suite is that large, and Python's arithmetic on a 401-digit
    integer ends in OverflowError wherever it meets a float (one over 4,300 digits in ValueError).
    """
    return int(digits) if len(digits.lstrip("-")) <= MAX_INT_DIGITS else float(digits)


def read_file(path: Path, folder: str | None = None) -> tuple[list[dict], str | None, int]:
    """Rows of one saved file, why it was skipped (None if it was used), and how many benchmarks it held.

    `folder` names the machine beside its host name (default: the file's folder).
    """
    doc, why = _parse(path)
    if why:
        return [], why, 0
    return benchmark_rows(doc, path, folder)


def benchmark_rows(doc, path: Path, folder: str | None = None) -> tuple[list[dict], str | None, int]:
    """read_file's answer for a document already parsed."""
    if not isinstance(doc, dict) or not isinstance(doc.get("benchmarks"), list):
        return [], "not a pytest-benchmark result (no 'benchmarks' list)", 0

    machine_info = _as_dict(doc.get("machine_info"))
    commit = _as_dict(doc.get("commit_info"))
    node = str(machine_info.get("node") or "unknown")
    # With the host name, the results folder tells machines apart (see results_folder).
    folder = folder or path.parent.name or "."
    columns = machine_columns(machine_info)
    run = {
        "machine": machine_identity(node, folder, columns),
        "node": node,
        "results_folder": folder,
        "source_file": str(path),
        "run_datetime": _scalar(doc.get("datetime")),
        "commit_id": _scalar(commit.get("id")),
        "commit_dirty": _scalar(commit.get("dirty")),
    }
    # A run stopped early (Ctrl-C, -x) is kept but marked: --latest and --export prefer a complete one.
    incomplete = why_incomplete(machine_info, doc["benchmarks"])
    run.update(run_complete=incomplete is None, run_incomplete_why=incomplete)
    run.update(columns)

    rows, refused = [], []
    for bench in doc["benchmarks"]:
        bench = _as_dict(bench)
        info, stats = bench.get("extra_info"), _as_dict(bench.get("stats"))
        why = _why_not_ours(info)
        if why is not None:
            refused.append(why)
            continue
        times, passes = _round_times(info, stats)
        if times is None and _stat(stats, "median") is None:
            continue
        row = {key: _scalar(value) for key, value in info.items()}
        row.update(run)
        # pytest-benchmark's own figures, as round times whichever layout saved them
        per_round = float(info["steps_per_round"]) if per_step_stats(info) else 1.0
        row.update(
            benchmark=_scalar(bench.get("name")),
            stats_rounds=_stat(stats, "rounds"),
            **{
                f"stats_{key}_s": None if _stat(stats, key) is None else _stat(stats, key) * per_round
                for key in ("median", "q1", "q3")
            },
        )
        row[RAW_TIMES] = times
        row[ROUND_PASS] = passes
        rows.append(row)
    if not rows:
        if not doc["benchmarks"]:
            return [], "pytest-benchmark result with no benchmarks", 0
        why = refused[0] if refused else "without usable timings"
        return [], f"pytest-benchmark result {why}", len(doc["benchmarks"])
    return rows, None, len(doc["benchmarks"])


def dropped_note(path: Path, rows: list[dict], total: int) -> str | None:
    """A one-line note when a usable file also held benchmarks the report could not use."""
    dropped = total - len(rows)
    if not dropped:
        return None
    return f"{path}: left out {dropped} of {total} benchmarks without this suite's extra_info or timings"


def _normalize(frame: pd.DataFrame) -> pd.DataFrame:
    """Types and defaults: identity fields complete, numbers numeric, dates as UTC timestamps."""
    for key, default in IDENTITY_DEFAULTS.items():
        frame[key] = frame[key].fillna(default) if key in frame else default
    frame["batch_size"] = frame["batch_size"] if "batch_size" in frame else np.nan
    frame["batch_size"] = pd.to_numeric(frame["batch_size"], errors="coerce").fillna(frame["n_examples"])
    for key in _INTEGER_KEYS:
        frame[key] = pd.to_numeric(frame[key], errors="coerce").fillna(0).astype("int64")
    for key in ("flops_per_step", "bytes_per_step", *LIMIT_FIELDS):
        frame[key] = pd.to_numeric(frame[key], errors="coerce") if key in frame else np.nan
    for key in (k for k in CASE_KEYS if k not in _INTEGER_KEYS):  # the rest of a case's identity is text
        frame[key] = frame[key].astype(str)
    frame["run_datetime"] = pd.to_datetime(frame["run_datetime"], utc=True, errors="coerce", format="ISO8601")
    # Once the fields are complete: the one identity (saved from schema 3 on, computed for older files).
    frame["case_id"] = case_ids(frame, trust_unversioned=False)
    frame["backend_version"] = backend_versions(frame)
    return frame


def results_folder(path: Path, roots: list[Path]) -> str:
    """The folder that names a file's machine: its path below the searched folder.

    pytest-benchmark saves into one folder per machine *kind* (Linux-CPython-3.11-64bit);
    results from several machines are kept one folder each above it
    (results/gpu-box/Linux-CPython-3.12-64bit/), and that part must stay in the id.
    """
    for root in roots:
        try:
            relative = path.parent.resolve().relative_to(root)
        except ValueError:
            continue
        return relative.as_posix() if relative.parts else root.name
    return path.parent.name or "."


def read_results(paths: Iterable[str | Path], warn: Callable[[str], None] = warn_stderr) -> Loaded:
    """Read every usable file under `paths`; warn (one line each) about the rest."""
    paths = list(paths)
    files, skipped = find_files(paths, warn)
    roots = [Path(p).resolve() for p in paths if Path(p).is_dir()]
    rows, used = [], []
    records: dict[str, list[dict]] = {kind: [] for kind in RECORD_KINDS}
    for path in files:
        doc, why = _parse(path)
        kind, bad_record = record_kind(doc) if not why else (None, None)
        if kind and not bad_record:
            records[kind].append({**doc, "path": str(path)})
            continue
        file_rows, why, total = (
            ([], why or bad_record, 0) if why or bad_record else benchmark_rows(doc, path, results_folder(path, roots))
        )
        if why:
            warn(f"skipping {path}: {why}")
            skipped.append((str(path), why))
        else:
            note = dropped_note(path, file_rows, total)
            if note:
                warn(note)
            rows.extend(file_rows)
            used.append(path)
    frame = _normalize(pd.DataFrame(rows)) if rows else pd.DataFrame()
    return Loaded(frame, used, skipped, records[RELEASE_VERDICTS_KIND], records[SELF_TEST_KIND], records[HISTORY_KIND])


def load_results(paths: Iterable[str | Path], warn: Callable[[str], None] = warn_stderr) -> pd.DataFrame:
    """The tidy table of every usable result under `paths` (empty if none): one row per case per run."""
    return read_results(paths, warn).frame
