"""The reproducer of a change point: a standalone plain-MLX script, valid, fast on a tiny size, free of the suite.

The script is written for a fake change point (and through a fake history),
parsed, checked to import only NumPy, MLX and the standard library, and run
against the installed MLX on a tiny size, alone and interleaved (A/A, both
workers on this interpreter).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import numpy as np
import pytest
from test_versions_history import STEP_CASE, run
from test_versions_paired import MACHINE, World, bisect_in, fake_cases

from bench.cases.datasets import batch_schedule, make_problem, mlp_initial_params
from bench.cases.sizes import Size
from bench.report.html_history import history_section
from bench.report.load import read_results
from bench.versions import bisect, compare, repro_script, reproducer

POINT = {
    "case_id": "linear-mlx-compiled-step-cpu-b32-n1000-d10",
    "older": "0.32.0",
    "newer": "0.32.1",
    "verdict": "regression",
    "status": "ok",
    "pct_change": 12.9,
    "ci_low_pct": 6.3,
    "ci_high_pct": 20.0,
}
CASE = {"model": "linear", "backend": "mlx", "variant": "compiled", "barrier": "step", "device": "cpu",
        "batch_size": 32, "hidden": None}  # fmt: skip
PROBES = {
    "0.32.0": {"packages": {"mlx": "0.32.0", "mlx-cpu": "0.32.0", "numpy": "2.1.0"}, "blas": ["/e/a/libblas.so"]},
    "0.32.1": {"packages": {"mlx": "0.32.1", "mlx-cpu": "0.32.1", "numpy": "2.1.0"}, "blas": ["/e/a/libblas.so"]},
}
STDLIB = set(sys.stdlib_module_names)


def measurements(case=CASE, case_id=POINT["case_id"], n=1000, d=10):
    threads = {"OMP_NUM_THREADS": "1"}
    workers = {label: [{"threads": threads, "affinity": [0]}] for label in PROBES}
    return {
        "cases": {case_id: {"case": case, "size": {"n_examples": n, "n_features": d}, "steps_per_round": 40}},
        "sessions": [{"workers": workers}],
    }


def write(tmp_path, point=POINT, data=None):
    specs = {label: f"mlx[cpu]=={label}" for label in PROBES}
    pythons = {label: f"/envs/{label}/bin/python" for label in PROBES}
    records = reproducer.write_reproducers(
        tmp_path, [dict(point)], data or measurements(), specs, pythons, "vm | EPYC",
        probe=lambda python: PROBES[python.parts[2]],
    )  # fmt: skip
    assert len(records) == 1
    return tmp_path / records[0]["script"], records[0]


def imported(text: str) -> set[str]:
    """The top-level modules a script imports, anywhere in it."""
    names = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add((node.module or "").split(".")[0])
    return names


def test_the_script_of_a_change_point_is_valid_python_that_imports_nothing_of_the_suite(tmp_path):
    script, record = write(tmp_path)
    text = script.read_text()
    assert script.name == f"{POINT['case_id']}-0.32.0-to-0.32.1.py"
    found = imported(text)
    assert found - STDLIB <= {"numpy", "mlx"} and "bench" not in found and "numpy" in found
    assert 'uv run --with "mlx[cpu]==0.32.0"' in text and 'uv run --with "mlx[cpu]==0.32.1"' in text
    assert "--interleave 0.32.0 0.32.1" in text and "+12.9% [+6.3, +20.0]" in text
    # The differences the suite recorded: the MLX packages differ, the BLAS and threads are the same.
    assert "package mlx: 0.32.0 -> 0.32.1" in text and "package mlx-cpu: 0.32.0 -> 0.32.1" in text
    assert "package numpy" not in text and "same BLAS libraries: /e/a/libblas.so" in text
    assert 'same thread variables in the workers: {"OMP_NUM_THREADS": "1"}' in text
    case = ast.literal_eval(text.split("CASE: dict = ", 1)[1].split("\n", 1)[0])
    assert case["steps_per_round"] == 40 and case["numpy"] == "2.1.0" and case["batch_size"] == 32
    readme = (tmp_path / reproducer.FOLDER / reproducer.README_NAME).read_text()
    assert script.name in readme and "package mlx: 0.32.0 -> 0.32.1" in readme
    assert record["differences"][0] == "package mlx: 0.32.0 -> 0.32.1"


def test_only_confirmed_mlx_change_points_get_a_script(tmp_path):
    points = [dict(POINT, status="inconclusive"), dict(POINT, verdict="broken"), dict(POINT, verdict="same")]
    assert reproducer.write_reproducers(tmp_path, points, measurements(), {}, {}, "vm") == []
    assert not (tmp_path / reproducer.FOLDER).exists()


def test_an_environment_that_cannot_be_read_is_said_in_the_header(tmp_path):
    script, record = reproducer_with_missing_python(tmp_path)
    assert "the older environment could not be read" in script.read_text()


def reproducer_with_missing_python(tmp_path):
    records = reproducer.write_reproducers(
        tmp_path, [dict(POINT)], measurements(), {}, {"0.32.0": tmp_path / "absent" / "python"}, "vm"
    )
    return tmp_path / records[0]["script"], records[0]


@pytest.mark.parametrize(
    "kernel, shape",
    [
        (CASE, (200, 10)),
        ({**CASE, "variant": "autodiff", "barrier": "sync", "batch_size": None, "model": "logistic"}, (200, 10)),
        ({**CASE, "model": "mlp", "variant": "compiled", "hidden": 8, "batch_size": 16}, (64, 6)),
        ({**CASE, "variant": "analytic", "barrier": "round", "batch_size": None}, (200, 10)),
    ],
)
def test_the_script_runs_against_the_installed_mlx_on_a_tiny_size(tmp_path, kernel, shape):
    pytest.importorskip("mlx.core")
    n, d = shape
    script, _ = write(tmp_path, data=measurements(kernel, POINT["case_id"], n, d))
    done = subprocess.run(
        [sys.executable, str(script), "--rounds", "3", "--steps", "5", "--warmup", "1"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert f"n={n} d={d}, K=5 steps per round, 3 rounds" in out and " us/step (median; quartiles " in out
    environment = json.loads(out.split("environment: ", 1)[1].splitlines()[0])
    assert environment["mlx"] and environment["numpy"] == np.__version__


def test_interleaved_a_a_run_prints_both_timings_and_the_change(tmp_path):
    pytest.importorskip("mlx.core")
    script, _ = write(tmp_path, data=measurements(CASE, POINT["case_id"], 200, 10))
    done = subprocess.run(
        [sys.executable, str(script), "--interleave", "0.32.0", "0.32.1", "--worker-python", sys.executable,
         "--sessions", "2", "--rounds", "4", "--steps", "5"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert sum(line.startswith("session ") for line in lines) == 2
    assert any(line.startswith("mlx 0.32.0: ") for line in lines) and any(
        line.startswith("mlx 0.32.1: ") for line in lines
    )
    assert lines[-1].startswith("0.32.0 -> 0.32.1: time per step ") and "(95%)" in lines[-1]


@pytest.mark.parametrize("model, batch, hidden", [("linear", 32, None), ("logistic", None, None), ("mlp", 256, 64)])
def test_the_script_builds_the_suites_data_byte_for_byte(model, batch, hidden):
    size = Size(1000, 10)
    data = repro_script.make_data(model, 1000, 10, batch, hidden)
    problem = make_problem(model, size, batch, hidden)
    assert np.array_equal(data["X"], problem.X) and np.array_equal(data["y"], problem.y)
    start = mlp_initial_params(size, hidden) if model == "mlp" else problem.start
    assert all(np.array_equal(data["start"][k], v) for k, v in start.items())
    if batch:
        assert np.array_equal(data["batches"], batch_schedule(model, size, batch))


def test_a_history_writes_a_reproducer_per_change_point_and_the_page_links_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(compare, "machine_identity", lambda: dict(MACHINE))
    world = World(cases=fake_cases(12, 4), effects={r: {STEP_CASE: 0.35} for r in ("0.29.0", "0.29.1", "0.30.0")})
    _, document = run(tmp_path, world)
    point = document["change_points"][0]
    assert point["reproducer"] == f"reproducers/{STEP_CASE}-0.28.0-to-0.29.0.py"
    script = tmp_path / "r" / point["reproducer"]
    ast.parse(script.read_text())
    assert "could not be read" in script.read_text()  # the fake environments do not exist: said, not hidden
    assert document["reproducers"][0]["script"] == point["reproducer"]
    assert f"reproducer: {point['reproducer']}" in capsys.readouterr().out
    page = history_section(read_results([tmp_path / "r"], warn=lambda line: None).histories, 0.10)
    assert f'href="{(script).as_uri()}"' in page and "reproducers/README.md" in page


def test_a_bisect_writes_the_reproducer_of_its_first_regressed_release(tmp_path, monkeypatch):
    case = "linear-mlx-v3-step-cpu-n1000-d10"
    world = World(effects={r: {case: 0.4} for r in ("0.31.0", "0.31.1", "0.32.4")})
    available = ["0.29.0", "0.29.1", "0.30.0", "0.31.0", "0.31.1", "0.32.4"]
    assert bisect_in(world, tmp_path, monkeypatch, case, "0.29.0", "0.32.4", available) == 0
    saved = json.loads((tmp_path / "r" / bisect.BISECT_JSON).read_text())
    probe = next(p for p in saved["probes"] if p["release"] == "0.31.0")
    assert probe["reproducer"] == f"reproducers/{case}-0.29.0-to-0.31.0.py"
    ast.parse((tmp_path / "r" / probe["reproducer"]).read_text())
