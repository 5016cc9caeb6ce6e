"""python -m bench.report end to end: outputs, filters, exit statuses, bad input, atomic writes."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import report_synth as synth

from bench.report import main
from bench.report.outputs import write_atomic
from bench.report.regression import VERDICT_COLUMNS

DATA = Path(__file__).parent / "data" / "report"
RESULTS = DATA / "results"
REPO = Path(__file__).resolve().parents[1]
SLOW_CASE = "linear-mlx-compiled-step-cpu-n2000-d20"
MAC = "ci-mac/Darwin-CPython-3.12-64bit (Apple M1, 8 CPUs, 16 GiB)"


def header(path):
    """The header row of a CSV file."""
    with open(path, newline="") as f:
        return next(csv.reader(f))


def rows(path):
    """The rows of a CSV file as dicts."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def two_versions(tmp_path):
    """Three runs each of MLX 0.30.0 and 0.31.0 on one machine, interleaved; SLOW_CASE 30% slower in 0.31.0."""
    folder = tmp_path / "results" / "Darwin-CPython-3.12-64bit"
    for i in range(3):
        for j, version in enumerate(("0.30.0", "0.31.0")):
            slowdown = 1.3 if version == "0.31.0" else 1.0
            grid = synth.grid_benchmarks(seed=10 * j + i, slow=SLOW_CASE, slowdown=slowdown)
            date = f"2026-01-0{1 + i}T0{j}:00:00+00:00"
            synth.write(folder, f"000{2 * i + j + 1}_run", synth.run(grid, mlx_version=version, date=date))
    return tmp_path / "results"


def test_report_on_saved_results(tmp_path, capsys):
    out = tmp_path / "report"
    assert main([str(RESULTS), "--out", str(out)]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"throughput.csv", "speedup.csv", "backends.csv", "versions.csv", "summary.md"} <= names
    assert not [n for n in names if n.endswith(".tmp")]
    plots = sorted(out.glob("*.png"))
    assert {p.name.split("-")[0] for p in plots} == {"throughput", "speedup"}  # one MLX version: no versions plot
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in plots)

    throughput = header(out / "throughput.csv")
    for column in (
        "machine",
        "run_datetime",
        "mlx_version",
        "steps_per_round",
        "median_round_s",
        "iqr_round_s",
        "steps_per_s",
        "samples_per_s",
        "gflops_per_s",
        "gb_per_s",
        "unstable",
        "cpu_model",
        "mlx_blas_library",
    ):
        assert column in throughput, column
    assert "round_times_s" not in throughput
    speedup = rows(out / "speedup.csv")
    assert {r["baseline_barrier"] for r in speedup} == {"eager", "sync"} and all(r["faster"] for r in speedup)
    assert {r["backend"] for r in speedup} == {"mlx"} and {r["baseline_backend"] for r in speedup} == {"numpy"}
    assert header(out / "versions.csv")[: len(VERDICT_COLUMNS)] == VERDICT_COLUMNS

    summary = (out / "summary.md").read_text()
    assert (
        summary.index("## Regressions")
        < summary.index("## MLX against NumPy")
        < summary.index("## The blog's cases")
        < summary.index("## Machines")
    )
    assert "10,348" in summary and "8,320" in summary  # the blog's published figures beside ours
    assert "reference (netlib) BLAS" in summary
    assert "## Unstable rows" in summary and "mlx-blog-round-cpu" in summary.split("## Unstable rows")[1]
    assert "wrote throughput.csv" in capsys.readouterr().out


def test_report_is_reproducible(tmp_path):
    main([str(RESULTS), "--out", str(tmp_path / "a"), "--no-plots"])
    main([str(RESULTS), "--out", str(tmp_path / "b"), "--no-plots"])
    for name in ("throughput.csv", "speedup.csv", "backends.csv"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text()


def test_defaults_are_results_in_and_report_out(tmp_path, monkeypatch):
    (tmp_path / "results").symlink_to(RESULTS, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    assert main(["--no-plots"]) == 0
    assert (tmp_path / "report" / "summary.md").is_file()


def test_regressions_come_first_and_fail_on_regression(two_versions, tmp_path, capsys):
    out = tmp_path / "out"
    assert main([str(two_versions), "--out", str(out), "--no-plots"]) == 0
    assert main([str(two_versions), "--out", str(out), "--no-plots", "--fail-on-regression"]) == 1
    printed = capsys.readouterr().out
    assert f"regression: {MAC} {SLOW_CASE}: MLX 0.30.0 -> 0.31.0 +" in printed
    flagged = [r for r in rows(out / "versions.csv") if r["verdict"] == "regression"]
    assert {(r["model"], r["case"], r["method"]) for r in flagged} == {
        ("linear", "mlx-compiled-step-cpu-n2000-d20", "run-level")
    }
    assert 25 < float(flagged[0]["pct_change"]) < 35 and (flagged[0]["n_older"], flagged[0]["n_newer"]) == ("3", "3")
    summary = (out / "summary.md").read_text()
    regressions_section = summary.split("## Regressions")[1].split("##")[0]
    # The digest counts each release against the previous one (versions.csv also holds "against the oldest").
    assert "**1 regression(s)**" in regressions_section and "mlx-compiled-step-cpu-n2000-d20" in regressions_section
    # A looser threshold: 30% is not more than 40%.
    assert main([str(two_versions), "--out", str(out), "--no-plots", "--fail-on-regression", "--threshold", "40%"]) == 0


def test_versions_plot_when_there_are_two_versions(two_versions, tmp_path):
    out = tmp_path / "out"
    assert main([str(two_versions), "--out", str(out), "--model", "linear"]) == 0
    assert [p.name for p in out.glob("versions-*.png")] == [
        "versions-linear-ci-mac_Darwin-CPython-3.12-64bit_Apple_M1_8_CPUs_16_GiB.png"
    ]


def test_inconclusive_comparison_has_its_own_exit_status(two_versions, tmp_path, capsys):
    # NumPy 20% slower in every run of 0.31.0 (not the same NumPy): the controls moved.
    folder = two_versions / "Darwin-CPython-3.12-64bit"
    for path in folder.glob("*.json"):
        doc = json.loads(path.read_text())
        if doc["machine_info"]["mlx_version"] == "0.31.0":
            for bench in doc["benchmarks"]:
                if bench["extra_info"]["backend"] == "numpy":
                    bench["stats"]["data"] = [1.2 * t for t in bench["stats"]["data"]]
            path.write_text(json.dumps(doc))
    out = tmp_path / "out"
    assert main([str(two_versions), "--out", str(out), "--no-plots"]) == 0
    assert main([str(two_versions), "--out", str(out), "--no-plots", "--fail-on-regression"]) == 4
    printed = capsys.readouterr().out
    assert f"inconclusive: {MAC}: MLX 0.30.0 -> 0.31.0: the NumPy controls moved +" in printed
    assert "regression:" not in printed
    assert {r["comparison_status"] for r in rows(out / "versions.csv")} == {"inconclusive"}
    assert "**inconclusive**" in (out / "summary.md").read_text().split("## Regressions")[1].split("##")[0]
    # A regression on another machine wins over the inconclusive comparison.
    for i in range(3):
        for j, version in enumerate(("0.30.0", "0.31.0")):
            grid = synth.grid_benchmarks(seed=50 + 10 * j + i, slow=SLOW_CASE, slowdown=1.3 if j else 1.0)
            doc = synth.run(grid, mlx_version=version, node="linux-box", date=f"2026-01-0{1 + i}T0{j}:00:00+00:00")
            synth.write(two_versions / "Linux-CPython-3.12-64bit", f"000{2 * i + j + 1}_run", doc)
    assert main([str(two_versions), "--out", str(out), "--no-plots", "--fail-on-regression"]) == 1


@pytest.mark.parametrize("value, regression", [("10%", True), ("0.1", True), ("25%", True), ("0.35", False)])
def test_threshold_forms(two_versions, tmp_path, value, regression):
    # 30% slower: a regression under thresholds of 10% or 25%, not under 35%.
    status = main(
        [str(two_versions), "--out", str(tmp_path / "o"), "--no-plots", "--threshold", value, "--fail-on-regression"]
    )
    assert status == (1 if regression else 0)


@pytest.mark.parametrize("value", ["abc", "10", "0", "150%"])
def test_bad_threshold_is_a_usage_error(tmp_path, value, capsys):
    assert main([str(RESULTS), "--out", str(tmp_path), "--threshold", value]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_filters(two_versions, tmp_path):
    other = synth.run(synth.grid_benchmarks(seed=5), mlx_version="0.31.0", node="linux-box")
    synth.write(two_versions / "Linux-CPython-3.12-64bit", "0001_run", other)
    out = tmp_path / "out"

    assert main([str(two_versions), "--out", str(out), "--no-plots", "--machine", "linux-box"]) == 0
    assert {r["machine"] for r in rows(out / "throughput.csv")} == {
        "linux-box/Linux-CPython-3.12-64bit (Apple M1, 8 CPUs, 16 GiB)"
    }

    assert main([str(two_versions), "--out", str(out), "--no-plots", "--model", "logistic"]) == 0
    assert {r["model"] for r in rows(out / "throughput.csv")} == {"logistic"}
    assert not any(r["verdict"] == "regression" for r in rows(out / "versions.csv"))

    synth.write(
        two_versions / "Darwin-CPython-3.12-64bit",
        "0003_run",
        synth.run(synth.grid_benchmarks(seed=9), mlx_version="0.31.0", date="2026-03-01T00:00:00+00:00"),
    )
    assert main([str(two_versions), "--out", str(out), "--no-plots", "--latest"]) == 0
    runs = {(r["machine"], r["mlx_version"], Path(r["source_file"]).name) for r in rows(out / "throughput.csv")}
    assert {name for machine, version, name in runs if version == "0.31.0" and machine.startswith("ci-mac")} == {
        "0003_run.json"
    }
    assert len(runs) == 3  # one run per machine and MLX version


def test_help_explains_every_option(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for option in (
        "--out",
        "--machine",
        "--model",
        "--latest",
        "--threshold",
        "--fail-on-regression",
        "--correction",
        "PATH",
    ):
        assert option in text
    assert "1 a regression" in text and "4 no regression but an inconclusive comparison" in " ".join(text.split())


@pytest.mark.parametrize(
    "make_paths, message",
    [
        (lambda tmp: [(tmp / "empty").mkdir() or tmp / "empty"], "no usable benchmark results"),
        (lambda tmp: [DATA / "bad"], "no usable benchmark results"),
        (lambda tmp: [tmp / "missing"], "no usable benchmark results"),
        (lambda tmp: [DATA / "bad" / "truncated.json"], "no usable benchmark results"),
    ],
)
def test_nothing_usable_exits_2_with_one_clear_line(tmp_path, capsys, make_paths, message):
    paths = make_paths(tmp_path)
    assert main([*map(str, paths), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0]
    assert all(line.startswith(("warning: skipping", "error:")) for line in err.splitlines())
    assert "Traceback" not in err and not (tmp_path / "out").exists()


def test_bad_files_are_warned_about_and_the_rest_reported(tmp_path, capsys):
    assert (
        main([str(RESULTS), str(DATA / "bad"), str(tmp_path / "missing"), "--out", str(tmp_path / "out"), "--no-plots"])
        == 0
    )
    warnings = capsys.readouterr().err.splitlines()
    assert len(warnings) == 5 and all(w.startswith("warning: skipping ") for w in warnings)
    assert "other_tool.json" in (tmp_path / "out" / "summary.md").read_text().split("### Skipped input files")[1]


def test_out_that_is_a_file(tmp_path, capsys):
    target = tmp_path / "report.txt"
    target.write_text("keep me")
    assert main([str(RESULTS), "--out", str(target)]) == 2
    assert "is a file" in capsys.readouterr().err and target.read_text() == "keep me"


def test_nothing_matching_the_filters_exits_2(tmp_path, capsys):
    assert main([str(RESULTS), "--out", str(tmp_path / "o"), "--model", "mlp"]) == 2
    assert "no results match" in capsys.readouterr().err


def test_outputs_never_overwrite_inputs(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "throughput.csv").write_text("something the user passed as input")
    assert main([str(RESULTS), str(out / "throughput.csv"), "--out", str(out)]) == 2
    assert "would overwrite" in capsys.readouterr().err
    assert (out / "throughput.csv").read_text() == "something the user passed as input"


def test_new_fields_get_their_tables(tmp_path):
    out = tmp_path / "out"
    assert main([str(DATA / "new_fields"), "--out", str(out), "--no-plots"]) == 0
    page = (out / "index.html").read_text()
    for section in ("<h3>Cold start</h3>", "<h3>Harness overhead</h3>", "<h3>Distributed runs</h3>"):
        assert section in page
    assert ">peak memory (MiB)</th>" in page and ">% of roofline</th>" in page
    # The one identity (bench.cases.identity), as pytest names the data-parallel case: -ring-2ranks, not -ring-r2.
    assert "mlx-compiled-step-cpu-ring-2ranks" in page.split("<h3>Distributed runs</h3>")[1]
    table = rows(out / "throughput.csv")
    assert all(r["roofline_fraction"] for r in table) and {r["phase"] for r in table} == {"warm", "cold"}


def test_atomic_write_leaves_the_old_file_when_interrupted(tmp_path):
    target = tmp_path / "versions.csv"
    target.write_text("complete old file\n")

    def interrupted(handle):
        handle.write("half a new ")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, interrupted)
    assert target.read_text() == "complete old file\n"
    assert [p.name for p in tmp_path.iterdir()] == ["versions.csv"]


def test_an_interrupted_report_leaves_no_half_written_csv(tmp_path, monkeypatch):
    out = tmp_path / "out"
    assert main([str(RESULTS), "--out", str(out), "--no-plots"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    import pandas as pd

    real = pd.DataFrame.to_csv

    def dies_halfway(self, handle, *args, **kwargs):
        real(self.head(2), handle, *args, **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", dies_halfway)
    assert main([str(RESULTS), "--out", str(out), "--no-plots"]) == 2
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_python_dash_m_runs_it(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "bench.report", str(DATA / "bad" / "not_json.json"), "--out", str(tmp_path / "o")],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.splitlines()[0].startswith("warning: skipping") and done.stderr.splitlines()[-1].startswith(
        "error:"
    )


def test_a_report_that_fails_half_way_leaves_the_previous_one_whole(tmp_path, monkeypatch):
    out = tmp_path / "out"
    assert main([str(RESULTS), "--out", str(out), "--no-plots"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    import bench.report.make_report as cli

    def page_fails(*args, **kwargs):
        raise OSError(28, "No space left on device")  # after the CSVs and summary.md were written

    monkeypatch.setattr(cli, "build_page", page_fails)
    assert main([str(RESULTS), "--out", str(out), "--no-plots", "--threshold", "5%"]) == 2
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no new CSV beside the old index.html
    new = tmp_path / "new"
    assert main([str(RESULTS), "--out", str(new), "--no-plots"]) == 2
    assert not new.exists()  # a folder the failed report made is not left behind


def test_an_export_may_go_into_the_out_folder_the_report_creates(tmp_path, capsys):
    out = tmp_path / "fresh"
    assert (
        main(
            [str(RESULTS), "--out", str(out), "--no-plots", "--export", "github-action-benchmark", str(out / "b.json")]
        )
        == 0
    )
    assert json.loads((out / "b.json").read_text()) and (out / "index.html").is_file()


def test_one_benchmark_without_a_backend_name_is_left_out_not_a_crash(tmp_path, capsys):
    # Found by tests/test_properties.py: a None backend became the text "nan" and broke the side-by-side table.
    doc = json.loads(next(RESULTS.rglob("*.json")).read_text())
    doc["benchmarks"][3]["extra_info"]["backend"] = None
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "0001_run.json").write_text(json.dumps(doc))
    (tmp_path / "r" / "0002_a\nb.json").write_text("{")  # a line break in a name stays on the warning's line
    assert main([str(tmp_path / "r"), "--out", str(tmp_path / "out"), "--no-plots"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(line.startswith("warning: ") for line in err)
    assert any("left out 1 of 10 benchmarks" in line for line in err) and any("0002_a\\nb.json" in line for line in err)
