"""Which saved files the report reads, and how: complete runs first, nothing foreign, bad input in one line.

Each test replays a case that once went wrong, on a tmp_path copy of saved results.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import report_synth as synth

from bench.report import main
from bench.report.load import read_results
from bench.results.run_state import INTERRUPTED, RUN_FIELD, run_mark
from bench.session import lifecycle
from bench.session.config import SESSION_CONFIG

DATA = Path(__file__).parent / "data" / "report"
RESULTS = DATA / "results"
SAMPLE = next(RESULTS.rglob("*.json"))


def _run(date: str, passes: int, planned: int = 2, **machine) -> dict:
    """A saved run whose cases each have `passes` of `planned` passes."""
    grid = synth.grid_benchmarks(seed=passes, models=("linear",))
    for bench in grid:
        bench["extra_info"]["passes"] = passes
    doc = synth.run(grid, date=date, **machine)
    doc["machine_info"]["bench_settings"]["passes"] = planned
    return doc


def _stderr_lines(capsys) -> list[str]:
    return capsys.readouterr().err.splitlines()


def test_latest_and_export_prefer_the_last_complete_run_and_say_which_they_skipped(tmp_path, capsys):
    # Case: a Ctrl-C left a run with 1 pass of 2 and no mark; --latest and --export took it for the newest run.
    folder = tmp_path / "results" / "Darwin-CPython-3.12-64bit"
    synth.write(folder, "0001_run", _run("2026-01-01T00:00:00+00:00", passes=2))
    synth.write(folder, "0002_run", _run("2026-01-02T00:00:00+00:00", passes=1))  # saved by today's code, unmarked
    export = tmp_path / "bench.json"
    out = tmp_path / "report"
    argv = [str(tmp_path / "results"), "--out", str(out), "--no-plots", "--latest"]
    assert main([*argv, "--export", "github-action-benchmark", str(export)]) == 0
    notes = [line for line in _stderr_lines(capsys) if line.startswith("note:")]
    assert len(notes) == 1 and "skipped 1 newer run(s) that are not complete: 0002_run.json" in notes[0]
    assert "the planned 2 passes" in notes[0]
    used = {Path(p).name for p in synth_rows(out)["source_file"]}
    assert used == {"0001_run.json"}
    alone = tmp_path / "alone"
    synth.write(alone, "0001_run", _run("2026-01-01T00:00:00+00:00", passes=2))
    expected = tmp_path / "expected.json"
    assert (
        main(
            [
                str(alone),
                "--out",
                str(tmp_path / "r2"),
                "--no-plots",
                "--export",
                "github-action-benchmark",
                str(expected),
            ]
        )
        == 0
    )
    figures = [(e["name"], e["value"]) for e in json.loads(export.read_text())]
    assert figures == [(e["name"], e["value"]) for e in json.loads(expected.read_text())]  # the complete run's


def test_a_run_marked_interrupted_is_passed_over_and_used_only_for_want_of_another(tmp_path, capsys):
    folder = tmp_path / "results" / "m"
    marked = _run("2026-01-03T00:00:00+00:00", passes=2)
    marked["machine_info"][RUN_FIELD] = run_mark(2, None, [], 2)
    synth.write(folder, "0001_run", marked)
    out = tmp_path / "report"
    assert main([str(tmp_path / "results"), "--out", str(out), "--no-plots", "--latest"]) == 0
    notes = [line for line in _stderr_lines(capsys) if line.startswith("note:")]
    assert len(notes) == 1 and "used 1 run(s) that are not complete" in notes[0] and "Ctrl-C" in notes[0]
    synth.write(folder, "0000_run", _run("2026-01-01T00:00:00+00:00", passes=2))  # an older complete run
    assert main([str(tmp_path / "results"), "--out", str(out), "--no-plots", "--latest"]) == 0
    assert {Path(p).name for p in synth_rows(out)["source_file"]} == {"0000_run.json"}


def synth_rows(out: Path) -> dict[str, list[str]]:
    """throughput.csv's columns as lists."""
    import csv

    with open(out / "throughput.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {key: [row[key] for row in rows] for key in rows[0]}


def test_the_session_marks_a_run_stopped_by_ctrl_c(tmp_path):
    # The pytest side of case 1: the mark is made when the session finishes, before pytest-benchmark saves.
    schedule = SimpleNamespace(finalize=lambda: None, short_cases=lambda: ["linear-mlx-x"], passes=3)
    state = SimpleNamespace(schedule=schedule, run_mark=None)
    session = SimpleNamespace(config=SimpleNamespace(stash={SESSION_CONFIG: state}), shouldstop=False, shouldfail=False)
    hook = lifecycle.pytest_sessionfinish(session, 2)  # pytest.ExitCode.INTERRUPTED
    next(hook)
    assert state.run_mark["state"] == INTERRUPTED
    assert (
        state.run_mark["why"] == "interrupted (Ctrl-C): 1 case(s) with fewer than the planned 3 passes (linear-mlx-x)"
    )
    assert run_mark(0, None, [], 3) == {"state": "complete", "why": None, "exit_status": 0}
    assert run_mark(1, "stopping after 1 failures", [], 3)["why"] == "stopped early (stopping after 1 failures)"


def test_a_hidden_temporary_file_is_not_read_as_a_second_run(tmp_path):
    # Case: a run killed while saving left .saving-*.json (or .NAME.tmp), which the report read as another run.
    folder = tmp_path / "results" / "Linux-CPython-3.11-64bit"
    shutil.copytree(RESULTS / "Linux-CPython-3.11-64bit", folder)
    shutil.copy(SAMPLE, folder / ".saving-abc123.json")
    shutil.copy(SAMPLE, folder / ".0002_run.json.x1y2.tmp.json")
    warnings = []
    loaded = read_results([tmp_path / "results"], warnings.append)
    assert [p.name for p in loaded.files] == [SAMPLE.name] and not warnings


def test_a_symlinked_results_folder_is_followed_and_said(tmp_path):
    # Case: results/m3max -> elsewhere was skipped without a word.
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(RESULTS, elsewhere)
    results = tmp_path / "results"
    results.mkdir()
    (results / "m3max").symlink_to(elsewhere)
    (results / "gone").symlink_to(tmp_path / "missing")
    (results / "m3max-again").symlink_to(elsewhere)
    warnings = []
    loaded = read_results([results], warnings.append)
    assert len(loaded.files) == 1 and loaded.files[0].parts[-3] in ("m3max", "m3max-again")
    assert any(w.startswith("following the symbolic link") and "m3max" in w for w in warnings)
    assert any("gone" in w and "does not exist" in w for w in warnings)
    assert any("read already" in w for w in warnings)  # the second link to one folder: said, not counted twice


def test_a_401_digit_integer_is_refused_as_a_figure_not_a_traceback(tmp_path, capsys):
    # Case: OverflowError from an integer of 401 digits in statistics, data and memory fields.
    doc = json.loads(SAMPLE.read_text())
    big = int("9" * 401)
    doc["benchmarks"][0]["stats"]["median"] = big
    doc["benchmarks"][0]["stats"]["data"][0] = big
    doc["benchmarks"][1]["stats"]["q1"] = big
    doc["benchmarks"][2]["extra_info"]["flops_per_step"] = big
    doc["benchmarks"][3]["extra_info"]["n_examples"] = big
    doc["machine_info"]["memory_total_bytes"] = big
    doc["machine_info"]["cpu_count"] = "CPU_COUNT"
    folder = tmp_path / "results" / "x"
    folder.mkdir(parents=True)
    # And one past Python's 4,300-digit limit for int(), as a foreign writer may put it.
    (folder / "0001_big.json").write_text(json.dumps(doc).replace('"CPU_COUNT"', "9" * 5000))
    assert main([str(tmp_path / "results"), "--out", str(tmp_path / "report"), "--no-plots"]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and all(line.startswith(("warning: ", "note: ")) for line in err.splitlines())
    loaded = read_results([folder], lambda line: None)
    assert loaded.frame["memory_gib"].isna().all()
    assert (loaded.frame["cpu_count"] == 2).all()  # the 5,000-digit count refused: py-cpuinfo's count instead


def _record(kind: str, **fields) -> dict:
    return {"kind": kind, "schema_version": 1, "created": "2026-02-01T00:00:00+00:00", **fields}


def test_release_records_with_wrong_typed_fields_are_refused_by_field_and_the_report_built(tmp_path, capsys):
    # Case: verdicts, history and self-test records with wrong-typed fields crashed the whole report.
    results = tmp_path / "results"
    shutil.copytree(RESULTS, results)
    records = {
        "release-verdicts.json": _record(
            "mlx-sgd-bench-release-verdicts", comparisons=[{"older": "0.30.0", "status": ["ok"]}], rows=[]
        ),
        "history.json": _record("mlx-sgd-bench-release-history", releases=7, rows=[{"pct_vs_oldest": "12%"}]),
        "self-test.json": _record("mlx-sgd-bench-self-test", status="pass", planted="none", fit_to_gate="yes"),
    }
    for name, doc in records.items():
        (results / name).write_text(json.dumps(doc))
    assert main([str(results), "--out", str(tmp_path / "report"), "--no-plots"]) == 0
    warnings = [line for line in _stderr_lines(capsys) if "wrong type" in line]
    assert len(warnings) == 3
    assert any("comparisons[0].status is a list; text was expected" in w for w in warnings)
    assert any("releases is a number; a list of release names was expected" in w for w in warnings)
    assert any("fit_to_gate is text; true or false was expected" in w for w in warnings)
    assert (tmp_path / "report" / "index.html").is_file()


def test_a_model_name_with_a_slash_or_a_nul_is_skipped_and_the_rest_reported(tmp_path, capsys):
    # Case: a model name with '/' stopped the whole report; with a NUL byte, a ValueError traceback (plot names).
    folder = tmp_path / "results" / "Linux-CPython-3.11-64bit"
    shutil.copytree(RESULTS / "Linux-CPython-3.11-64bit", folder)
    for number, name in ((2, "lin/ear"), (3, "lin\x00ear")):
        doc = copy.deepcopy(json.loads(SAMPLE.read_text()))
        for bench in doc["benchmarks"]:
            bench["extra_info"]["model"] = name
        (folder / f"000{number}_odd.json").write_text(json.dumps(doc))
    out = tmp_path / "report"
    assert main([str(tmp_path / "results"), "--out", str(out)]) == 0  # with plots: their file names
    skipped = [line for line in _stderr_lines(capsys) if "invalid model" in line]
    assert len(skipped) == 2 and all(line.startswith("warning: skipping ") for line in skipped)
    assert set(synth_rows(out)["source_file"]) == {str(folder / SAMPLE.name)}
    assert all("/" not in p.name[len("throughput-") :] for p in out.glob("*.png"))
