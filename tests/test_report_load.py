"""The report's loader: saved JSON -> tidy table, and every kind of bad input skipped with one line."""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import report_synth as synth

from bench.report.load import load_results, read_results

DATA = Path(__file__).parent / "data" / "report"
RESULTS = DATA / "results"
SAMPLE = RESULTS / "Linux-CPython-3.11-64bit" / "0001_7b7a985_20261127_151607.json"
NEW_FIELDS = DATA / "new_fields"

# The result schema (docs/results-schema.md, "Results files"), written out on its own: what every row must carry.
SCHEMA_EXTRA_INFO = (
    "model",
    "backend",
    "variant",
    "device",
    "dtype",
    "barrier",
    "n_examples",
    "n_features",
    "batch_size",
    "steps_per_round",
    "flops_per_step",
    "bytes_per_step",
    "max_rel_error",
    "error_bound",
)
SCHEMA_MACHINE_INFO = (
    "mlx_version",
    "numpy_version",
    "python_version",
    "cpu_model",
    "usable_cpus",
    "mlx_default_device",
    "mlx_gpu_backend",
    "mlx_device_info",
    "mlx_blas_library",
    "mlx_blas_source",
    "numpy_blas",
    "numpy_blas_threads",
    "loaded_blas_libraries",
    "env",
)


def collect(paths):
    """load via read_results, returning (Loaded, warnings)."""
    warnings = []
    return read_results(paths, warnings.append), warnings


def test_sample_run_is_one_row_per_case_with_every_design_field():
    loaded, warnings = collect([RESULTS])
    frame = loaded.frame
    assert warnings == [] and loaded.skipped == []
    assert len(frame) == 10 and frame["case_id"].is_unique
    for column in SCHEMA_EXTRA_INFO + SCHEMA_MACHINE_INFO + ("run_datetime", "machine", "source_file"):
        assert column in frame, column
    assert set(frame["machine"]) == {"vm/Linux-CPython-3.11-64bit (AMD EPYC, 2 CPUs)"}  # node + results subfolder + CPU
    assert frame["run_datetime"].iloc[0] == pd.Timestamp("2026-11-27T15:16:51.485345Z")
    assert frame["mlx_version"].iloc[0] == "0.32.4" and frame["numpy_blas_threads"].iloc[0] == 2
    assert "reference BLAS" in frame["mlx_blas_source"].iloc[0]
    row = frame.set_index("case_id").loc["linear-mlx-autodiff-step-cpu-n2000-d20"]
    assert isinstance(row["round_times_s"], np.ndarray) and len(row["round_times_s"]) == 5
    assert row["steps_per_round"] == 45 and row["batch_size"] == 2000


def test_fields_added_later_pass_through_and_default_when_absent():
    frame = load_results([NEW_FIELDS], warn=lambda m: None)
    by_id = frame[frame["phase"] == "warm"].set_index("case_id")
    # A file without schema_version: ids recomputed in the one identity (width and batch before the size).
    assert by_id.loc["mlp-mlx-compiled-step-cpu-h64-n1000-d100", "hidden"] == 64
    assert by_id.loc["linear-mlx-compiled-step-cpu-n1000-d100", "hidden"] == 0  # saved as null
    assert by_id.loc["linear-mlx-compiled-step-cpu-b32-n1000-d100", "batch_size"] == 32
    distributed = by_id.loc["linear-mlx-compiled-step-cpu-ring-2ranks-n100000-d100"]
    assert distributed["n_ranks"] == 2 and distributed["distributed_backend"] == "ring"
    assert distributed["rank_compute_s_per_step"] == "[0.00033,0.00035]"  # lists kept as JSON text
    assert set(frame.loc[frame["scenario"] != "distributed", "n_ranks"]) == {1}
    assert set(frame["phase"]) == {"warm", "cold"}
    assert {"peak_memory_bytes", "harness_overhead_ratio", "scaling_efficiency", "first_round_s"} <= set(frame.columns)
    assert set(frame["memory_bandwidth_gb_s"]) == {400.0} and set(frame["peak_gflops_f32"]) == {14_000.0}

    old = load_results([RESULTS])  # results from before those fields existed
    assert set(old["hidden"]) == {0} and set(old["n_ranks"]) == {1} and set(old["distributed_backend"]) == {""}
    assert old["memory_bandwidth_gb_s"].isna().all()


def test_missing_batch_size_means_full_batch(tmp_path):
    bench = synth.benchmark(times=[0.01] * 5)
    del bench["extra_info"]["batch_size"]
    synth.write(tmp_path, "run", synth.run([bench]))
    assert load_results([tmp_path])["batch_size"].tolist() == [1_000]


def _truncated_at_token(tmp_path):
    text = SAMPLE.read_text()
    path = tmp_path / "cut.json"
    path.write_text(text[: text.index('"benchmarks"') + len('"benchmarks": [')])
    return path


BAD_INPUTS = {
    "not JSON": (lambda tmp: DATA / "bad" / "not_json.json", "not JSON"),
    "truncated in a string": (lambda tmp: DATA / "bad" / "truncated.json", "truncated JSON"),
    "truncated between tokens": (_truncated_at_token, "truncated JSON"),
    "JSON of another tool": (lambda tmp: DATA / "bad" / "other_tool.json", "not a pytest-benchmark result"),
    "another suite's pytest-benchmark file": (
        lambda tmp: DATA / "bad" / "other_suite.json",
        "without this suite's extra_info",
    ),
    "empty file": (
        lambda tmp: (tmp / "empty.json").write_text("") and tmp / "empty.json" or tmp / "empty.json",
        "empty file",
    ),
    "binary file": (lambda tmp: (tmp / "bin.json").write_bytes(b"\xff\xfe\x00\x81") and tmp / "bin.json", "not JSON"),
    "a JSON list": (
        lambda tmp: (tmp / "list.json").write_text("[1, 2]") and tmp / "list.json",
        "not a pytest-benchmark result",
    ),
    "empty folder": (lambda tmp: (tmp / "empty_dir").mkdir() or tmp / "empty_dir", "no .json files"),
    "missing path": (lambda tmp: tmp / "does-not-exist", "no such file or folder"),
}


@pytest.mark.parametrize("kind", list(BAD_INPUTS))
def test_bad_input_is_skipped_with_one_line_naming_it(tmp_path, kind):
    make, reason = BAD_INPUTS[kind]
    path = make(tmp_path)
    loaded, warnings = collect([path])
    assert loaded.frame.empty
    assert len(warnings) == 1, warnings
    assert str(path) in warnings[0] and reason in warnings[0] and "\n" not in warnings[0]


def test_bad_files_beside_good_ones_cost_only_themselves():
    loaded, warnings = collect([RESULTS, DATA / "bad"])
    assert len(loaded.frame) == 10 and len(loaded.files) == 1
    assert len(warnings) == len(loaded.skipped) == 4
    assert {Path(p).name for p, _ in loaded.skipped} == {
        "not_json.json",
        "truncated.json",
        "other_tool.json",
        "other_suite.json",
    }


def test_foreign_benchmarks_inside_one_of_our_files_are_dropped(tmp_path):
    ours = synth.benchmark(times=[0.01] * 5)
    theirs = json.loads((DATA / "bad" / "other_suite.json").read_text())["benchmarks"][0]
    broken = synth.benchmark(times=[0.01] * 5)
    broken["extra_info"]["n_examples"] = "many"
    synth.write(tmp_path, "run", synth.run([ours, theirs, broken]))
    loaded, warnings = collect([tmp_path])
    assert len(loaded.frame) == 1 and loaded.skipped == []
    assert len(warnings) == 1 and "left out 2 of 3 benchmarks" in warnings[0] and "run.json" in warnings[0]


def test_results_without_raw_times_still_load(tmp_path):
    synth.write(tmp_path, "run", synth.run([synth.benchmark(times=[0.01, 0.02, 0.03], save_data=False)]))
    frame = load_results([tmp_path])
    assert frame["round_times_s"].tolist() == [None] and frame["stats_median_s"].tolist() == [0.02]


def test_a_file_named_twice_is_read_once():
    loaded, _ = collect([RESULTS, SAMPLE])
    assert len(loaded.files) == 1 and len(loaded.frame) == 10


def test_many_files_load_as_one_table(tmp_path):
    """300 saved runs (the sample file with varied dates and versions) -> 3,000 rows, nothing lost."""
    doc = json.loads(SAMPLE.read_text())
    for i in range(300):
        doc["datetime"] = f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:00:00+00:00"
        doc["machine_info"]["mlx_version"] = f"0.{20 + i % 5}.0"
        synth.write(tmp_path / "Linux-CPython-3.11-64bit", f"{i:04d}_run", doc)
    loaded, warnings = collect([tmp_path])
    assert warnings == [] and len(loaded.files) == 300
    assert len(loaded.frame) == 3_000 and loaded.frame["source_file"].nunique() == 300
    assert loaded.frame["mlx_version"].nunique() == 5


def test_reading_changes_nothing(tmp_path):
    folder = tmp_path / "results"
    shutil.copytree(DATA, folder)
    before = {
        p: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()
    }
    read_results([folder], lambda m: None)
    after = {
        p: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()
    }
    assert before == after


def test_mlx_blas_is_part_of_a_case_so_openblas_runs_never_pool_with_bundled_ones():
    from bench.report.load import blas_kind
    from bench.report.schema import CASE_KEYS

    assert "mlx_blas" in CASE_KEYS
    bundled = {
        "library": "/env-a/mlx_cpu.libs/libblas-bd8a282c.so.3.10.0",
        "source": "bundled with the mlx wheel (reference BLAS)",
    }
    other_env = {
        "library": "/env-b/mlx_cpu.libs/libblas-bd8a282c.so.3.10.0",
        "source": "bundled with the mlx wheel (reference BLAS)",
    }
    openblas = {
        "library": "/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3",
        "source": "global scope (--mlx-blas or LD_PRELOAD)",
    }
    assert (
        blas_kind(bundled)
        == blas_kind(other_env)
        == blas_kind({"library": "Accelerate", "source": "macOS system framework"})
        == "default"
    )
    assert blas_kind(openblas) == "libblas.so.3"


def test_machines_kept_one_folder_each_stay_apart_even_with_one_host_name(tmp_path):
    import shutil

    from bench.report.load import load_results

    sample = next(DATA.rglob("results/*/*.json"))
    for machine in ("laptop", "gpu-box"):
        target = tmp_path / "results" / machine / sample.parent.name
        target.mkdir(parents=True)
        shutil.copy(sample, target / sample.name)
    frame = load_results([tmp_path / "results"])
    node = frame["node"].iloc[0]
    assert set(frame["machine"]) == {
        f"{node}/laptop/{sample.parent.name} (AMD EPYC, 2 CPUs)",
        f"{node}/gpu-box/{sample.parent.name} (AMD EPYC, 2 CPUs)",
    }


def test_two_vms_of_one_name_with_different_cpus_or_memory_are_never_one_machine(tmp_path):
    import json

    from bench.report.load import load_results

    sample = next(DATA.rglob("results/*/*.json"))
    doc = json.loads(sample.read_text())
    folder = tmp_path / "results" / sample.parent.name
    folder.mkdir(parents=True)
    variants = {
        "epyc": {"cpu_model": "AMD EPYC 7763 64-Core Processor", "cpu_count": 2, "memory_total_bytes": 8 * 2**30},
        "xeon": {"cpu_model": "Intel(R) Xeon(R) Platinum 8375C CPU", "cpu_count": 2, "memory_total_bytes": 8 * 2**30},
        "bigger": {"cpu_model": "AMD EPYC 7763 64-Core Processor", "cpu_count": 4, "memory_total_bytes": 16 * 2**30},
    }
    for name, fields in variants.items():
        (folder / f"{name}.json").write_text(json.dumps(doc | {"machine_info": doc["machine_info"] | fields}))
    frame = load_results([tmp_path / "results"])
    assert set(frame["machine"]) == {
        f"vm/{sample.parent.name} (AMD EPYC 7763 64-Core Processor, 2 CPUs, 8 GiB)",
        f"vm/{sample.parent.name} (Intel(R) Xeon(R) Platinum 8375C CPU, 2 CPUs, 8 GiB)",
        f"vm/{sample.parent.name} (AMD EPYC 7763 64-Core Processor, 4 CPUs, 16 GiB)",
    }
    assert set(frame["memory_gib"]) == {8.0, 16.0} and set(frame["cpu_count"]) == {2, 4}


def test_a_release_runners_suite_copy_is_not_read_as_results(tmp_path):
    # Case: the fixtures inside a bench.versions suite snapshot (results/versions/*/suite/tests/data/...)
    # were pooled as real runs. The snapshot is made as the release runner makes it, from this checkout.
    from bench.versions.runs import snapshot_suite

    versions_results = tmp_path / "results" / "versions" / "20261205-1200"
    shutil.copytree(RESULTS, versions_results / "runs")
    suite = versions_results / "suite"
    snapshot_suite(suite)
    assert list((suite / "tests" / "data" / "report").rglob("*.json"))  # the fixtures are in the copy
    for searched in (tmp_path / "results", versions_results):
        warnings = []
        loaded = read_results([searched], warnings.append)
        assert loaded.files and not any(suite in p.parents for p in loaded.files)
        assert set(loaded.frame["node"]) == {"vm"}  # the fixtures' Darwin machine (m3max) is not a run
        assert any("a copy of the suite's code" in w for w in warnings)


def test_a_symlink_loop_and_an_unreadable_folder_are_said_as_such(tmp_path):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    warnings = []
    read_results([loop], warnings.append)
    assert any("loops" in w for w in warnings)
    import os

    folder = tmp_path / "results"
    shutil.copytree(RESULTS, folder / "ok")
    locked = folder / "locked"
    locked.mkdir()
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):
            return  # root reads everything: nothing to say then
        warnings = []
        loaded = read_results([folder], warnings.append)
        assert loaded.files and any("cannot read this folder" in w for w in warnings)
    finally:
        locked.chmod(0o755)


@pytest.mark.parametrize(
    "field, value, said",
    [
        ("schema_version", 99, "schema_version 99; this report reads up to 3"),
        ("steps_per_round", -100, "invalid steps_per_round (-100"),
        ("n_examples", "many", "invalid n_examples ('many'"),
        ("batch_size", float("inf"), "invalid batch_size (inf"),  # found by tests/test_properties.py: a crash
        ("steps_per_round", 2**63, "invalid steps_per_round (9223372036854775808"),  # beyond an int64 column
        ("hidden", -1, "invalid hidden (-1: a non-negative whole number"),
        ("backend", None, "invalid backend (None: a name was expected)"),  # found by test_properties: a crash
        ("model", float("nan"), "invalid model (nan"),
    ],
)
def test_a_file_from_the_future_or_with_bad_sizes_is_refused_by_name(tmp_path, field, value, said):
    source = next(RESULTS.rglob("*.json"))
    doc = json.loads(source.read_text())
    for bench in doc["benchmarks"]:
        bench["extra_info"][field] = value
    path = tmp_path / "odd.json"
    path.write_text(json.dumps(doc))
    warnings = []
    loaded = read_results([path], warnings.append)
    assert loaded.frame.empty and any(said in w for w in warnings)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 0.0, -0.001, 1e-320, 1e-10])
def test_non_finite_zero_or_negative_times_are_never_figures(tmp_path, bad, capsys):
    from bench.report import main

    source = next(RESULTS.rglob("*.json"))
    doc = json.loads(source.read_text())
    for bench in doc["benchmarks"]:
        bench["extra_info"]["round_times_s"] = [bad] * len(bench["extra_info"].get("round_times_s") or [1])
        bench["stats"]["median"] = bad
        bench["stats"]["data"] = [bad]
    folder = tmp_path / "results" / "Linux"
    folder.mkdir(parents=True)
    (folder / "0001_bad.json").write_text(json.dumps(doc))  # json writes NaN and Infinity as such
    out = tmp_path / "out"
    assert main([str(tmp_path / "results"), "--out", str(out), "--no-plots"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("error: no usable benchmark results") and not out.exists()


def test_a_figure_that_overflows_is_blank_and_never_exported_as_infinity(tmp_path, capsys):
    from bench.report import main

    source = next(RESULTS.rglob("*.json"))
    doc = json.loads(source.read_text())
    doc["benchmarks"][0]["extra_info"]["flops_per_step"] = 1e308  # accepted, but x steps/s overflows
    folder = tmp_path / "results" / "Linux"
    folder.mkdir(parents=True)
    (folder / "0001_extreme.json").write_text(json.dumps(doc))
    out, export = tmp_path / "out", tmp_path / "bench.json"
    argv = [
        str(tmp_path / "results"),
        "--out",
        str(out),
        "--no-plots",
        "--export",
        "github-action-benchmark",
        str(export),
    ]
    assert main(argv) == 0
    import numpy as np
    import pandas as pd

    for name in ("throughput.csv", "speedup.csv", "backends.csv"):
        numbers = pd.read_csv(out / name).select_dtypes("number")
        assert not np.isinf(numbers.to_numpy()).any(), name
    throughput = pd.read_csv(out / "throughput.csv")
    assert throughput["gflops_per_s"].isna().sum() == 1 and throughput["steps_per_s"].notna().all()
    # Strict JSON: other tools cannot parse Infinity or NaN.
    entries = json.loads(export.read_text(), parse_constant=lambda name: pytest.fail(f"{name} in the export"))
    assert len(entries) == len(doc["benchmarks"]) and all(0 < e["value"] < 1e300 for e in entries)

    from bench.report.export import github_action_benchmark
    from bench.report.row_figures import add_figures

    frame = add_figures(read_results([tmp_path / "results"]).frame)
    frame.loc[frame.index[:2], "steps_per_s"] = [np.inf, np.nan]  # a figure that is none: no point on a chart
    assert len(github_action_benchmark(frame)) == len(frame) - 2
