"""A real ``pytest --benchmark-only`` stopped by Ctrl-C in its later passes: marked, passed over, no worker left.

The other tests of interrupted runs build their files by hand (tests/test_result_runs.py);
this one replays the whole path on a tiny grid in a subprocess: a complete run, then a
run that gets SIGINT once pass 2 is done, then ``python -m bench.report --latest --export``
over the folder holding both.
"""

from __future__ import annotations

import csv
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MARKER = "MLX_SGD_BENCH_TEST_RUN"  # inherited by every worker of the run: how the test finds them afterwards
GRID = ["--sizes", "200x5", "-k", "linear and numpy", "--rounds", "3", "--round-time", "0.01", "--no-overhead-check"]
RUN_TIMEOUT_S = 60  # each pytest run; the tiny grid takes a few seconds
SIGNAL_WITHIN_S = 45  # how long the test waits for the 'pass 2 of' line before giving up
# Passes of the run that is interrupted: far more than it reaches, so that however late the 'pass 2 of' line comes
# through the pipe on a busy machine, the Ctrl-C still lands in a later pass, never after the last (about 1 s each).
INTERRUPTED_PASSES = 40

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds leftover workers through /proc"),
]


def _pytest(storage: Path, passes: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pytest",
        "benchmarks",
        "--benchmark-only",
        "-p",
        "no:randomly",
        *GRID,
        "--passes",
        str(passes),
        f"--benchmark-storage=file://{storage}",
    ]


def _env(marker: str) -> dict:
    return dict(os.environ, PYTHONPATH=str(ROOT), **{MARKER: marker})


def _processes_with(marker: str, besides: int | None = None) -> list[int]:
    """Live (not zombie) processes, other than this one and `besides`, whose environment carries MARKER=marker."""
    needle = f"{MARKER}={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in (os.getpid(), besides):
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue  # ended meanwhile, or not ours to read
        if state != "Z":
            found.append(int(entry.name))
    return found


def _lines(stream) -> queue.Queue:
    """The stream's lines, read by a thread so that the test's waits keep their deadline."""
    lines: queue.Queue = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _interrupt_in_a_later_pass(cmd: list[str], env: dict) -> tuple[int, str, list[int]]:
    """Run `cmd`; once it says pass 2 is done, send Ctrl-C's SIGINT while a worker of the next pass runs.

    Returns the exit status, the output and the workers alive when the signal was sent.
    """
    # A session of its own, as a terminal's foreground job: the SIGINT reaches pytest and not this test.
    # Ctrl-C's default disposition in the run, whatever this process inherited (a shell's background job starts
    # with SIGINT ignored, which Python keeps): a user's terminal gives pytest Python's own handler.
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    lines, output, workers = _lines(proc.stdout), [], []
    deadline = time.monotonic() + SIGNAL_WITHIN_S
    try:
        while not workers and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            output.append(line)
            if line.startswith("pass 2 of"):
                # Pass 3 begins now: wait for one of its workers, so that the Ctrl-C lands in the middle of it.
                while not (workers := _processes_with(env[MARKER], besides=proc.pid)) and proc.poll() is None:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.01)
        assert workers, "no worker of a later pass was seen to interrupt:\n" + "".join(output[-30:])
        os.killpg(proc.pid, signal.SIGINT)
        status = proc.wait(RUN_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    while (line := lines.get(timeout=5)) is not None:
        output.append(line)
    return status, "".join(output), workers


def _report(results: Path, out: Path, export: Path, env: dict) -> subprocess.CompletedProcess:
    """python -m bench.report --latest over `results`, exported for github-action-benchmark to `export`."""
    report = subprocess.run(
        [sys.executable, "-m", "bench.report", str(results), "--out", str(out), "--no-plots", "--latest"]
        + ["--export", "github-action-benchmark", str(export)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert report.returncode == 0, report.stderr[-3000:]
    return report


def test_ctrl_c_in_a_later_pass_saves_a_marked_run_the_report_passes_over_and_leaves_no_worker(tmp_path):
    storage = tmp_path / "results"
    marker = uuid.uuid4().hex
    env = _env(marker)
    first = subprocess.run(
        _pytest(storage, 1), cwd=ROOT, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S
    )
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    (complete,) = storage.rglob("*.json")

    status, output, _ = _interrupt_in_a_later_pass(_pytest(storage, INTERRUPTED_PASSES), env)
    assert status == 2, f"pytest ended with {status}, not 2 (interrupted):\n{output[-3000:]}"  # ExitCode.INTERRUPTED

    # No worker of either run outlives it.
    deadline = time.monotonic() + 5
    while (left := _processes_with(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"worker processes {left} outlived the interrupted run"

    # The interrupted run saved what it had, marked so.
    saved = sorted(p for p in storage.rglob("*.json") if p != complete)
    assert [p.parent for p in saved] == [complete.parent], f"expected one more run beside {complete.name}: {saved}"
    interrupted = saved[0]
    mark = json.loads(interrupted.read_text())["machine_info"].get("bench_run") or {}
    assert mark["state"] == "interrupted" and mark["exit_status"] == 2
    assert (
        mark["why"].startswith("interrupted (Ctrl-C)")
        and f"fewer than the planned {INTERRUPTED_PASSES} passes" in mark["why"]
    )

    # The report and its export take the earlier complete run and say, in one line, which they skipped and why.
    out, export = tmp_path / "report", tmp_path / "bench.json"
    report = _report(storage, out, export, env)
    notes = [line for line in report.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 1, report.stderr
    assert f"skipped 1 newer run(s) that are not complete: {interrupted.name}" in notes[0]
    assert "interrupted (Ctrl-C)" in notes[0]
    with open(out / "throughput.csv", newline="") as handle:
        sources = {Path(row["source_file"]).name for row in csv.DictReader(handle)}
    assert sources == {complete.name}
    alone = tmp_path / "alone" / complete.parent.name
    alone.mkdir(parents=True)
    shutil.copy(complete, alone)
    expected = tmp_path / "expected.json"
    _report(alone.parent, tmp_path / "report-alone", expected, env)
    figures = [(e["name"], e["value"]) for e in json.loads(export.read_text())]
    assert figures and figures == [(e["name"], e["value"]) for e in json.loads(expected.read_text())]
