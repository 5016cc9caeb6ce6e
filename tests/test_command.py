"""The console command mlx-sgd-bench: each subcommand reaches its tool's main with the arguments given."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import bench
from bench.console import command

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def calls(monkeypatch):
    """Replace every tool's main by a recorder: no real tool runs."""
    seen = []
    for module, _, _ in command.SUBCOMMANDS.values():

        def fake(argv, module=module):
            seen.append((module, list(argv)))
            return 7

        monkeypatch.setattr(importlib.import_module(module), "main", fake)
    return seen


@pytest.mark.parametrize(
    ("subcommand", "module"),
    [
        ("report", "bench.report.make_report"),
        ("versions", "bench.versions.dispatch"),
        ("agreement", "bench.report.agreement"),
        ("pinning", "bench.engine.pinning"),
    ],
)
def test_each_subcommand_hands_its_arguments_to_its_tool(calls, subcommand, module):
    assert command.main([subcommand, "a", "--b", "c"]) == 7
    assert calls == [(module, ["a", "--b", "c"])]


def test_history_is_the_release_runner_with_history_first(calls):
    assert command.main(["history", "0.29.0", "0.32.4", "--dry-run"]) == 7
    assert calls == [("bench.versions.dispatch", ["--history", "0.29.0", "0.32.4", "--dry-run"])]


def test_a_subcommands_help_is_its_tools_own(calls):
    command.main(["report", "--help"])
    assert calls == [("bench.report.make_report", ["--help"])]


def test_help_lists_every_subcommand(capsys, calls):
    assert command.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: mlx-sgd-bench")
    for name in ("report", "versions", "history", "agreement", "pinning"):
        assert f"\n  {name} " in out
    assert calls == []


def test_version_prints_the_packages_version(capsys):
    assert command.main(["--version"]) == 0
    assert capsys.readouterr().out == f"mlx-sgd-bench {bench.__version__}\n"


def test_an_unknown_subcommand_is_one_line_on_stderr_and_exit_2(capsys, calls):
    assert command.main(["reprot"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.splitlines()) == 1 and "reprot" in captured.err
    assert calls == []


def test_no_subcommand_is_a_usage_error(capsys, calls):
    assert command.main([]) == 2
    assert "usage: mlx-sgd-bench" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["-m", "bench", "--version"], f"mlx-sgd-bench {bench.__version__}"),
        (["-m", "bench.pinning", "--help"], "usage: python -m bench.pinning"),
        (["-m", "bench.report", "--help"], "usage:"),
        (["-m", "bench.versions", "--help"], "usage:"),
        (["-m", "bench.report.agreement", "--help"], "usage:"),
    ],
)
def test_every_command_a_user_knows_still_runs(argv, expected):
    """The tools' `python -m` names from before the package's layout by concern, and `python -m bench`."""
    result = subprocess.run([sys.executable, *argv], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith(expected)


def test_a_reader_that_goes_away_ends_a_tool_quietly():
    """`tool | head`: the pipe closes while the tool still prints; no traceback, the status of a SIGPIPE'd process."""
    script = "from bench.console.entry import run; run(lambda: print('x' * 1_000_000) or 0)"
    child = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    child.stdout.close()  # the reader goes before the 1 MB is written: more than a pipe holds
    stderr = child.stderr.read().decode()
    assert child.wait(timeout=60) == 141
    assert "Traceback" not in stderr and stderr == ""
