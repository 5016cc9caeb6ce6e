"""The report reads results timed in passes (schema_version 2: per-step stats) and older files alike."""

import json

import numpy as np
import pytest
import report_synth as synth

from bench.report.load import load_results
from bench.report.make_report import main
from bench.report.row_figures import add_figures
from bench.report.speedup import speedup_table


def in_passes(entry: dict, pass_medians, per_pass: int = 5) -> dict:
    """A synthetic benchmark entry re-laid as a passes run: rounds in extra_info, per-step stats."""
    k = entry["extra_info"]["steps_per_round"]
    times = [m * (1 + 0.001 * r) for m in pass_medians for r in range(per_pass)]
    labels = [p + 1 for p in range(len(pass_medians)) for _ in range(per_pass)]
    steps = np.asarray(times) / k
    entry["extra_info"].update(schema_version=2, round_times_s=times, round_pass=labels, passes=len(pass_medians))
    entry["stats"] = {
        "min": float(steps.min()), "max": float(steps.max()), "mean": float(steps.mean()),
        "median": float(np.median(steps)), "q1": float(np.percentile(steps, 25)), "q3": float(np.percentile(steps, 75)),
        "rounds": len(steps), "iterations": k, "data": steps.tolist(), "ops": float(1 / steps.mean()),
    }  # fmt: skip
    return entry


def save(tmp_path, benchmarks, name="0001_run.json", **run_args):
    path = tmp_path / "Linux-CPython-3.11-64bit" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(synth.run(benchmarks, **run_args)))
    return path


def test_per_step_stats_are_read_as_rounds_and_passes(tmp_path):
    entry = in_passes(synth.benchmark(steps_per_round=100, times=[0.02] * 5), [0.020, 0.028, 0.0202])
    save(tmp_path, [entry])
    row = add_figures(load_results([tmp_path])).iloc[0]
    assert row["n_passes"] == 3 and row["n_rounds"] == 15
    assert row["median_round_s"] == pytest.approx(0.0202, rel=3e-3)  # the median of the pass medians
    assert row["steps_per_s"] == pytest.approx(100 / 0.0202, rel=3e-3)
    assert row["pass_spread_pct"] == pytest.approx(100 * 0.008 / 0.0202, rel=1e-2)
    assert not row["unstable"]  # one pass of three disturbed: outvoted


def test_files_saved_before_passes_keep_their_meaning(tmp_path):
    save(tmp_path, [synth.benchmark(steps_per_round=100, times=[0.02, 0.021, 0.019, 0.02, 0.02])])
    row = add_figures(load_results([tmp_path])).iloc[0]
    assert row["n_passes"] == 1 and row["median_round_s"] == pytest.approx(0.02)
    assert row["steps_per_s"] == pytest.approx(5_000)


def test_per_step_stats_without_raw_times_fall_back_to_stats_as_rounds(tmp_path):
    entry = in_passes(synth.benchmark(steps_per_round=100, times=[0.02] * 5), [0.02, 0.02, 0.02])
    del entry["extra_info"]["round_times_s"]
    save(tmp_path, [entry])
    row = add_figures(load_results([tmp_path])).iloc[0]
    assert row["median_round_s"] == pytest.approx(0.02, rel=1e-2)


def test_speedup_is_taken_within_each_pass(tmp_path):
    # A burst slows pass 2 of both cases by 40%: within each pass MLX is at half NumPy's speed.
    numpy = in_passes(
        synth.benchmark(backend="numpy", variant="analytic", barrier="eager", times=[1] * 5), [0.01, 0.014, 0.01]
    )
    mlx = in_passes(
        synth.benchmark(backend="mlx", variant="autodiff", barrier="step", times=[1] * 5), [0.02, 0.028, 0.02]
    )
    save(tmp_path, [numpy, mlx])
    table = speedup_table(add_figures(load_results([tmp_path])))
    row = table.iloc[0]
    assert row["speedup"] == pytest.approx(0.5, rel=1e-2)
    assert row["passes"] == 3 and row["faster"] == "numpy"
    assert row["speedup_ci_low"] == pytest.approx(0.5, rel=1e-2) and "across passes" in row["ci_method"]


def test_export_for_github_action_benchmark(tmp_path):
    results = tmp_path / "results"
    entry = in_passes(synth.benchmark(steps_per_round=100, times=[0.02] * 5), [0.02, 0.021, 0.0202])
    save(results, [entry])
    out = tmp_path / "charts" / "bench.json"
    out.parent.mkdir()
    assert (
        main(
            [
                str(results),
                "--out",
                str(tmp_path / "report"),
                "--no-plots",
                "--export",
                "github-action-benchmark",
                str(out),
            ]
        )
        == 0
    )
    (chart,) = json.loads(out.read_text())
    assert chart["name"] == entry["extra_info"]["case_id"]
    assert chart["unit"] == "steps/s" and chart["value"] == pytest.approx(100 / 0.0202, rel=3e-3)
    assert chart["range"].startswith("± ")


def test_export_refuses_unknown_formats_and_inputs(tmp_path, capsys):
    results = tmp_path / "results"
    path = save(results, [synth.benchmark(times=[0.02] * 5)])
    assert main([str(results), "--out", str(tmp_path / "r"), "--export", "csv", str(tmp_path / "x")]) == 2
    assert "unknown format" in capsys.readouterr().err
    before = path.read_bytes()
    assert (
        main(
            [str(results), "--out", str(tmp_path / "r"), "--no-plots", "--export", "github-action-benchmark", str(path)]
        )
        == 2
    )
    assert "would overwrite" in capsys.readouterr().err and path.read_bytes() == before


def test_export_never_replaces_a_link_a_device_or_the_reports_own_digest(tmp_path, capsys):
    results = tmp_path / "results"
    save(results, [synth.benchmark(times=[0.02] * 5)])
    out = tmp_path / "r"
    target = tmp_path / "kept.json"
    target.write_text("kept")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    base = [str(results), "--out", str(out), "--no-plots", "--export", "github-action-benchmark"]
    cases = [
        (str(link), "symbolic link"),
        ("/dev/null", "not a regular file"),
        (str(out / "summary.md"), "the report's own outputs"),
        (str(tmp_path / "missing" / "bench.json"), "does not exist"),
    ]
    for path, said in cases:
        assert main([*base, path]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and said in err[0] and path in err[0]
    assert target.read_text() == "kept" and link.is_symlink() and not out.exists()
