"""The MLX-release runner (bench.versions): command line, order, pins, env cache, failure handling.

No test here creates a virtual environment or touches the network: the two
subprocess seams (`_call` for installs, `_stream` for pytest runs) are replaced
by fakes that behave like pip and pytest-benchmark would.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from bench import versions
from bench.versions import EnvCache, InstallError, PinSet, env_ownership, environments, run_reports, runs

PINS = PinSet(("numpy==2.0.0", "pytest==8.0.0"))


# ---------------------------------------------------------------- command line


def test_pytest_arguments_after_double_dash_pass_through():
    args = versions.parse_args(
        [
            "0.30.0",
            "0.32.4",
            "--mode",
            "runs",
            "--sizes",
            "2000x20",
            "--passes",
            "1",
            "--",
            "-k",
            "linear and not blog",
            "--rounds",
            "5",
        ]
    )
    assert args.releases == ["0.30.0", "0.32.4"]
    assert args.sizes == "2000x20" and args.passes == 1
    assert args.pytest_args == ["-k", "linear and not blog", "--rounds", "5"]


def test_options_after_double_dash_are_not_ours():
    args = versions.parse_args(["0.30.0", "--mode", "runs", "--", "--passes", "7", "--", "x"])
    assert args.passes == versions.DEFAULT_PASSES
    assert args.pytest_args == ["--passes", "7", "--", "x"]


def test_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv(versions.CACHE_ENV_VAR, str(tmp_path / "cache"))
    args = versions.parse_args(["0.30.0", "0.30.0", "--mode", "runs"])
    assert args.releases == ["0.30.0"]  # named twice, runs once per pass (a paired run needs two different)
    assert args.threshold == pytest.approx(0.10) and not args.fail_on_regression
    assert args.order == "rotate" and args.passes == 3 and args.sizes == "quick" and args.mode == "runs"
    assert args.cache_dir == tmp_path / "cache"
    assert args.results.parent == versions.REPO_ROOT / "results" / "versions"
    assert args.out == args.results / "report"


@pytest.mark.parametrize("text, value", [("10%", 0.10), ("0.05", 0.05), ("2.5%", 0.025)])
def test_threshold_reads_percent_or_fraction(text, value):
    assert versions.parse_args(["0.30.0", "0.32.4", "--threshold", text]).threshold == pytest.approx(value)


@pytest.mark.parametrize(
    "argv",
    [
        [],  # no release
        ["0.30.0", "--threshold", "10"],  # 10 as a fraction is 1000%
        ["0.30.0", "--passes", "0"],
        ["0.30.0", "--sizes", "banana"],
        ["0.30.0", "-k", "linear"],  # pytest's option without --
        ["0.30.0", "--order", "random"],
    ],
)
def test_bad_command_lines_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        versions.parse_args(argv)
    assert info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_list_and_clear_need_no_release():
    assert versions.parse_args(["--list-envs"]).list_envs
    assert versions.parse_args(["--clear-envs", "0.30.0"]).releases == ["0.30.0"]


def test_pytest_command_puts_user_arguments_last(tmp_path):
    cmd = versions.pytest_command(Path("/env/bin/python"), "0.30.0", 2, "2000x20", tmp_path, ["--sizes=1000x10"])
    assert cmd[:3] == ["/env/bin/python", "-m", "pytest"]
    assert "--benchmark-only" in cmd and f"--benchmark-storage=file://{tmp_path.resolve()}" in cmd
    assert "--benchmark-save=mlx-0.30.0-pass2" in cmd
    assert cmd[-1] == "--sizes=1000x10"  # argparse keeps the last: the user's choice wins


def test_child_environment_cannot_see_host_packages(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/somewhere/site-packages")
    monkeypatch.setenv(versions.CACHE_ENV_VAR, "/cache")
    env = versions.child_environment(tmp_path / "mlx-0.30.0")
    assert "PYTHONPATH" not in env and versions.CACHE_ENV_VAR not in env
    assert env["PYTHONNOUSERSITE"] == "1"
    assert env["PATH"].startswith(str(tmp_path / "mlx-0.30.0" / "bin"))


# ---------------------------------------------------------------- order


def test_rotation_puts_every_release_in_every_position():
    order = versions.run_order(["A", "B", "C"], passes=3)
    assert order == [(1, "A"), (1, "B"), (1, "C"), (2, "B"), (2, "C"), (2, "A"), (3, "C"), (3, "A"), (3, "B")]
    positions = Counter((release, i % 3) for i, (_, release) in enumerate(order))
    assert set(positions.values()) == {1} and len(positions) == 9


def test_every_pass_runs_every_release_once_and_passes_do_not_overlap():
    for order_name in versions.ORDERS:
        order = versions.run_order(["0.29.4", "0.31.1", "0.32.4"], passes=4, order=order_name, seed=7)
        assert [p for p, _ in order] == sorted(p for p, _ in order)  # interleaved: pass by pass
        for pass_no in range(1, 5):
            assert sorted(r for p, r in order if p == pass_no) == ["0.29.4", "0.31.1", "0.32.4"]


def test_shuffle_is_seeded_and_fixed_is_fixed():
    releases = [str(i) for i in range(6)]
    assert versions.run_order(releases, 3, "shuffle", seed=1) == versions.run_order(releases, 3, "shuffle", seed=1)
    assert versions.run_order(releases, 3, "shuffle", seed=1) != versions.run_order(releases, 3, "shuffle", seed=2)
    assert [r for _, r in versions.run_order(["A", "B"], 2, "fixed")] == ["A", "B", "A", "B"]


def test_no_release_left_means_no_run():
    assert versions.run_order([], passes=3) == []


# ---------------------------------------------------------------- pins


REQUIREMENTS = """\
# MLX: the Linux wheel with its CPU backend, the plain wheel (Metal) on macOS.
mlx[cpu]>=0.26.5; sys_platform == "linux"
mlx>=0.26.5; sys_platform == "darwin"
numpy>=1.26  # trailing comment
pytest-benchmark>=4.0
Pandas>=2.1
tabulate>=0.9
winonly; sys_platform == "win32"
"""
INSTALLED = {
    "numpy": "2.4.6",
    "pytest-benchmark": "5.3.1",
    "pytest": "9.2.0",
    "py-cpuinfo2": "10.1.1",
    "pandas": "3.1.1",
    "python-dateutil": "2.9.0",
    "mlx": "0.32.4",
    "mlx-cpu": "0.32.4",
}
REQUIRES = {
    "pytest-benchmark": ["py-cpuinfo2>=10.1", "pytest>=8.1", 'pygal; extra == "histogram"'],
    "pandas": ["numpy>=2", "python-dateutil>=2.9", 'tzdata; sys_platform == "win32"'],
    "mlx": ['mlx-cpu==0.32.4; platform_system == "Linux" and extra == "cpu"'],
}
LINUX = {
    "sys_platform": "linux",
    "platform_system": "Linux",
    "python_version": "3.11",
    "python_full_version": "3.11.7",
    "implementation_name": "cpython",
    "platform_machine": "x86_64",
    "os_name": "posix",
}


def linux_pins(text=REQUIREMENTS):
    """The pin set of REQUIREMENTS on a Linux machine with INSTALLED."""
    return versions.pin_set(text, INSTALLED.get, lambda name: REQUIRES.get(name, []), marker_env=LINUX)


def test_pins_are_the_installed_versions_of_everything_but_mlx():
    pins = linux_pins()
    assert pins.pins == (
        "numpy==2.4.6",
        "pandas==3.1.1",
        "py-cpuinfo2==10.1.1",  # a dependency of pytest-benchmark: pinned too
        "pytest==9.2.0",
        "pytest-benchmark==5.3.1",
        "python-dateutil==2.9.0",
        "tabulate>=0.9",  # not installed here: kept as written, with a note
    )
    assert len(pins.notes) == 1 and "tabulate" in pins.notes[0] and "\n" not in pins.notes[0]


def test_pins_skip_other_platforms_and_unrequested_extras():
    pins = " ".join(linux_pins().pins)
    for absent in ("mlx", "winonly", "tzdata", "pygal"):
        assert absent not in pins.replace("pytest-benchmark", "")


def test_pins_of_this_checkout_cover_requirements_txt():
    pins = versions.pin_set(versions.REQUIREMENTS.read_text())
    names = {p.split("==")[0].split(">")[0] for p in pins.pins}
    assert {"numpy", "pandas", "pytest", "pytest-benchmark", "threadpoolctl", "scipy", "matplotlib"} <= names
    assert not any(versions.is_mlx_distribution(name) for name in names)
    import numpy

    assert f"numpy=={numpy.__version__}" in pins.pins


@pytest.mark.parametrize(
    "name, mlx", [("mlx", True), ("mlx-cpu", True), ("MLX_Metal", True), ("mlx-cuda-12", True), ("mlxtend", False)]
)
def test_mlx_distributions(name, mlx):
    assert versions.is_mlx_distribution(name) is mlx


def test_mlx_spec_per_os():
    assert versions.mlx_spec("0.30.0", "linux") == "mlx[cpu]==0.30.0"
    assert versions.mlx_spec("0.30.0", "darwin") == "mlx==0.30.0"


# ---------------------------------------------------------------- environments


class FakeInstaller:
    """Stands in for `python -m venv`, pip (or `uv pip`) and the import check; releases in `missing` do not exist."""

    def __init__(self, missing=(), imports_as=None):
        self.missing = set(missing)
        self.imports_as = imports_as or {}
        self.calls = []

    def __call__(self, cmd, cwd=None, env=None):
        self.calls.append(cmd)
        if cmd[1:3] == ["-m", "venv"]:
            python = versions.env_python(Path(cmd[3]))
            python.parent.mkdir(parents=True)
            python.write_text("#!fake\n")
            (Path(cmd[3]) / "pyvenv.cfg").write_text("home = /usr/bin\n")  # as python -m venv writes
            return 0, ""
        if cmd[1:4] == ["-m", "pip", "install"] or cmd[1:3] == ["pip", "install"]:  # pip, or uv where installed
            spec = next(a for a in cmd if a.startswith("mlx"))
            release = spec.split("==")[1]
            if release in self.missing:
                return 1, (
                    f"ERROR: Could not find a version that satisfies the requirement {spec} (from versions: 0.30.0)\n"
                    f"ERROR: No matching distribution found for {spec}\n"
                )
            self.release = release
            self.installed = [a for a in cmd[cmd.index(spec) + 1 :] if "==" in a]  # what pip was asked to pin
            return 0, "Successfully installed ...\n"
        if cmd[1] == "-c":
            dists = {p.split("==")[0]: p.split("==")[1] for p in self.installed}
            return 0, json.dumps({"mlx": self.imports_as.get(self.release, self.release), "dists": dists}) + "\n"
        raise AssertionError(f"unexpected command {cmd}")


def claimed(path: Path) -> None:
    """A folder as the suite leaves it when a build starts: its owner file, then python -m venv's pyvenv.cfg."""
    path.mkdir(parents=True, exist_ok=True)
    (path / env_ownership.OWNER_NAME).write_text(json.dumps(env_ownership.owner_record(path.name[4:])))
    (path / "pyvenv.cfg").write_text("home = /usr/bin\n")


def test_env_is_built_once_then_reused(tmp_path, monkeypatch):
    fake = FakeInstaller()
    monkeypatch.setattr(environments, "_call", fake)
    cache = EnvCache(tmp_path)
    python, done = versions.ensure_env("0.30.0", cache, PINS)
    assert done.startswith("built") and python == versions.env_python(tmp_path / "mlx-0.30.0")
    marker = cache.marker("0.30.0")
    assert marker["pins"] == list(PINS.pins) and marker["spec"] == versions.mlx_spec("0.30.0")
    pip = next(c for c in fake.calls if "pip" in c)
    assert pip[-3:] == [versions.mlx_spec("0.30.0"), *PINS.pins]
    assert marker["installer"] == ("uv" if pip[1] == "pip" else "pip")
    n_calls = len(fake.calls)
    assert versions.ensure_env("0.30.0", cache, PINS) == (python, "ready")
    assert len(fake.calls) == n_calls  # reused: nothing ran


def test_half_built_or_stale_env_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setattr(environments, "_call", FakeInstaller())
    cache = EnvCache(tmp_path)
    versions.env_python(cache.path("0.30.0")).parent.mkdir(parents=True)  # no marker: an interrupted build
    claimed(cache.path("0.30.0"))  # the suite's owner file, written first of all
    (cache.path("0.30.0") / "leftover").write_text("x")
    assert "did not finish" in versions.ensure_env("0.30.0", cache, PINS)[1]
    assert not (cache.path("0.30.0") / "leftover").exists()

    newer = PinSet(("numpy==2.1.0", "pytest==8.0.0"))
    assert "pinned packages changed" in versions.ensure_env("0.30.0", cache, newer)[1]
    assert cache.marker("0.30.0")["pins"] == list(newer.pins)


def test_a_folder_that_is_not_an_environment_is_never_deleted_to_build_one(tmp_path, monkeypatch):
    monkeypatch.setattr(environments, "_call", FakeInstaller())
    cache = EnvCache(tmp_path / "envs")
    (cache.path("0.30.0") / ".git").mkdir(parents=True)  # someone's checkout that happens to bear the name
    (tmp_path / "elsewhere").mkdir()
    (cache.root / "mlx-0.31.0").symlink_to(tmp_path / "elsewhere")
    for release in ("0.30.0", "0.31.0"):
        with pytest.raises(InstallError, match="is not one of this suite's environments") as info:
            versions.ensure_env(release, cache, PINS)
        assert "\n" not in str(info.value)
    assert (cache.path("0.30.0") / ".git").is_dir() and (cache.root / "mlx-0.31.0").is_symlink()


def test_unknown_release_fails_in_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(environments, "_call", FakeInstaller(missing={"0.99.0"}))
    cache = EnvCache(tmp_path)
    with pytest.raises(InstallError) as info:
        versions.ensure_env("0.99.0", cache, PINS)
    message = str(info.value)
    assert "\n" not in message and "No matching distribution found for mlx" in message
    assert not cache.path("0.99.0").exists()
    assert (tmp_path / "mlx-0.99.0.install.log").exists()  # the full pip output is kept


def test_env_that_imports_another_mlx_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(environments, "_call", FakeInstaller(imports_as={"0.30.0": "0.32.4"}))
    with pytest.raises(InstallError, match="0.32.4, not 0.30.0"):
        versions.ensure_env("0.30.0", EnvCache(tmp_path), PINS)
    assert not (tmp_path / "mlx-0.30.0").exists()


def test_list_and_clear_envs(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(environments, "_call", FakeInstaller())
    cache = EnvCache(tmp_path / "envs")
    for release in ("0.32.4", "0.30.0", "0.31.1"):
        versions.ensure_env(release, cache, PINS)
    (cache.path("0.29.4") / "bin").mkdir(parents=True)  # half-built: a venv, no marker yet
    claimed(cache.path("0.29.4"))

    assert [e["release"] for e in cache.entries()] == ["0.29.4", "0.30.0", "0.31.1", "0.32.4"]  # version order
    versions.main(["--list-envs", "--cache-dir", str(cache.root)])
    listing = capsys.readouterr().out
    assert "0.29.4" in listing and "incomplete" in listing and listing.count("mlx 0.3") == 3

    versions.main(["--clear-envs", "0.30.0", "--cache-dir", str(cache.root)])
    assert [e["release"] for e in cache.entries()] == ["0.29.4", "0.31.1", "0.32.4"]
    versions.main(["--clear-envs", "--cache-dir", str(cache.root)])
    assert cache.entries() == []
    versions.main(["--list-envs", "--cache-dir", str(cache.root)])
    assert "no environments" in capsys.readouterr().out


def test_empty_or_missing_cache_lists_nothing(tmp_path):
    assert EnvCache(tmp_path / "nowhere").entries() == []
    assert EnvCache(tmp_path / "nowhere").clear() == []


# ---------------------------------------------------------------- whole sessions


class FakePytest:
    """Stands in for one pytest-benchmark run: saves a result file as --benchmark-save would.

    `fail` holds (release, pass) pairs whose run crashes before saving;
    `mislabel` makes a release's run record another MLX version;
    `interrupt_at` is the run during which the user presses Ctrl-C.
    """

    def __init__(self, fail=(), mislabel=None):
        self.fail = set(fail)
        self.mislabel = mislabel or {}
        self.runs = []
        self.cwds = set()
        self.interrupt_at = None

    def __call__(self, cmd, cwd, env, log, echo, timeout):
        options = dict(a.split("=", 1) for a in cmd if a.startswith("--benchmark-s"))
        name = options["--benchmark-save"]
        release, pass_no = name.removeprefix("mlx-").rsplit("-pass", 1)
        self.runs.append((int(pass_no), release))
        self.cwds.add(cwd)
        if len(self.runs) == self.interrupt_at:
            raise KeyboardInterrupt
        log.parent.mkdir(parents=True, exist_ok=True)
        if (release, int(pass_no)) in self.fail:
            log.write_text("Fatal Python error: Segmentation fault\n")
            return -11
        storage = Path(options["--benchmark-storage"].removeprefix("file://")) / "Linux-CPython-3.11-64bit"
        storage.mkdir(parents=True, exist_ok=True)
        number = len(list(storage.glob("*.json"))) + 1
        recorded = self.mislabel.get(release, release)
        (storage / f"{number:04d}_{name}.json").write_text(json.dumps({"machine_info": {"mlx_version": recorded}}))
        log.write_text("===== 4 passed, 2 deselected in 3.21s =====\n")
        return 0


@pytest.fixture
def session(tmp_path, monkeypatch):
    """Fake installer, fake pytest and a fake report; returns a function running main()."""
    installer = FakeInstaller(missing={"0.99.0"})
    runner = FakePytest()
    reports = []
    monkeypatch.setattr(environments, "_call", installer)
    monkeypatch.setattr(runs, "_stream", runner)

    def fake_report(results, out, threshold, fail_on_regression):
        reports.append((results, threshold, fail_on_regression))
        if session.report_status is None:
            return 1  # crashed before writing anything
        out.mkdir(parents=True, exist_ok=True)
        (out / "versions.csv").write_text(session.csv)
        return session.report_status

    monkeypatch.setattr(run_reports, "run_report", fake_report)

    def run(*argv):
        # A --results folder is used once (claim_results): each run gets its own, session.results the latest.
        session.runs_started += 1
        if session.runs_started > 1:
            session.results = tmp_path / f"results-{session.runs_started}"
        ours = ["--cache-dir", str(tmp_path / "envs"), "--results", str(session.results), "--sizes", "2000x20"]
        return versions.main([*ours, "--mode", "runs", *argv])

    session.csv = (
        "machine,case_id,backend,control,older,newer,against,pct_change,p_value_adjusted,verdict,comparison_status\n"
    )
    session.report_status = 0
    session.runner, session.reports, session.results, session.tmp = runner, reports, tmp_path / "results", tmp_path
    session.runs_started = 0
    session.run = run
    return session


def saved(results: Path) -> list[str]:
    """Names of the result files saved in a session, without their NNNN_ counter."""
    return sorted(p.name.split("_", 1)[1] for p in (results / versions.RUNS_DIR).glob("*/*.json"))


def test_session_runs_interleaved_and_reports(session, capsys):
    assert session.run("0.30.0", "0.32.4", "--passes", "2", "--", "-k", "linear") == versions.EXIT_OK
    assert session.runner.runs == [(1, "0.30.0"), (1, "0.32.4"), (2, "0.32.4"), (2, "0.30.0")]
    assert session.runner.cwds == {session.results / versions.SUITE_DIR}  # the copy, not the live checkout
    assert (session.results / versions.SUITE_DIR / "bench" / "versions" / "dispatch.py").exists()
    assert saved(session.results) == [
        "mlx-0.30.0-pass1.json",
        "mlx-0.30.0-pass2.json",
        "mlx-0.32.4-pass1.json",
        "mlx-0.32.4-pass2.json",
    ]
    assert session.reports == [(session.results, pytest.approx(0.10), False)]
    manifest = json.loads((session.results / versions.MANIFEST_NAME).read_text())
    assert manifest["pytest_args"] == ["-k", "linear"] and [r["status"] for r in manifest["runs"]] == ["ok"] * 4
    assert "4 passed, 2 deselected" in capsys.readouterr().out


def test_a_name_that_is_no_release_is_refused_before_anything_runs(session, capsys):
    with pytest.raises(SystemExit) as stop:
        session.run("0.30.0", "not-a-version", "0.32.4", "--passes", "1")
    assert stop.value.code == versions.EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'not-a-version' is not an MLX release number" in err
    assert session.runner.runs == [] and not (session.tmp / "envs").exists()


def test_bad_release_is_one_line_and_the_others_still_run(session, capsys):
    status = session.run("0.30.0", "0.99.0", "0.32.4", "--passes", "1")
    out = capsys.readouterr().out
    assert status == versions.EXIT_INCOMPLETE  # something failed, but what ran is kept and reported
    lines = [line for line in out.splitlines() if "0.99.0" in line]
    assert len(lines) == 1 and lines[0].startswith("mlx 0.99.0: could not install (")
    assert "No matching distribution found" in lines[0]
    assert sorted(r for _, r in session.runner.runs) == ["0.30.0", "0.32.4"]
    assert saved(session.results) == ["mlx-0.30.0-pass1.json", "mlx-0.32.4-pass1.json"]
    assert len(session.reports) == 1  # the comparison still runs on what was saved


def test_failed_run_keeps_earlier_and_later_results(session, capsys):
    session.runner.fail = {("0.32.4", 1)}
    status = session.run("0.30.0", "0.32.4", "--passes", "2")
    assert status == versions.EXIT_INCOMPLETE
    assert saved(session.results) == ["mlx-0.30.0-pass1.json", "mlx-0.30.0-pass2.json", "mlx-0.32.4-pass2.json"]
    failed = [line for line in capsys.readouterr().out.splitlines() if ": failed," in line]
    assert len(failed) == 1 and "pass 1 mlx 0.32.4" in failed[0] and "exit -11" in failed[0]
    manifest = json.loads((session.results / versions.MANIFEST_NAME).read_text())
    assert [r["status"] for r in manifest["runs"]] == ["ok", "failed", "ok", "ok"]


def test_results_that_measured_the_wrong_mlx_are_set_aside(session, capsys):
    session.runner.mislabel = {"0.30.0": "0.32.4"}
    assert session.run("0.30.0", "0.32.4", "--passes", "1") == versions.EXIT_INCOMPLETE
    assert saved(session.results) == ["mlx-0.32.4-pass1.json"]
    assert list((session.results / versions.RUNS_DIR).glob("*/*_mlx-0.30.0-pass1.json.rejected"))
    assert "rejected" in capsys.readouterr().out


def test_regression_fails_the_command_only_when_asked(session, capsys):
    session.csv += (
        "box/Linux,linear-mlx-compiled-step-cpu-n2000-d20,mlx,False,0.30.0,0.32.4,previous,25.0,0.001,regression,ok\n"
    )
    session.csv += (
        "box/Linux,linear-mlx-analytic-step-cpu-n2000-d20,mlx,False,0.30.0,0.32.4,previous,-2.0,0.6,same,ok\n"
    )
    assert session.run("0.30.0", "0.32.4", "--passes", "1") == versions.EXIT_OK
    assert session.run("0.30.0", "0.32.4", "--passes", "1", "--fail-on-regression", "--threshold", "5%") == 1
    assert session.reports[-1][1:] == (pytest.approx(0.05), True)
    out = capsys.readouterr().out
    assert "versions: REGRESSION in 1 comparison(s) (slower by more than 5%" in out
    assert "mlx 0.30.0 -> 0.32.4: 1 regression, 0 faster, 1 same, 0 undecided" in out


def test_numpy_controls_that_moved_are_flagged_as_noise(session, capsys):
    session.csv = "case_id,backend,control,older,newer,against,verdict,comparison_status\n"
    session.csv += (
        "linear-numpy-analytic-eager-cpu-n2000-d20,numpy,True,0.30.0,0.32.4,previous,regression,inconclusive\n"
    )
    session.csv += "linear-mlx-compiled-step-cpu-n2000-d20,mlx,False,0.30.0,0.32.4,previous,regression,inconclusive\n"
    assert session.run("0.30.0", "0.32.4", "--passes", "1") == versions.EXIT_OK
    out = capsys.readouterr().out
    warning = [line for line in out.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "1 NumPy control(s) changed (linear-numpy-analytic-eager-cpu-n2000-d20)" in warning[0]
    assert "versions: no regression" in out  # an inconclusive comparison's verdicts are not regressions


def test_verdict_table_counts_each_pair_once_regressions_first():
    rows = [
        {"older": "0.29.4", "newer": "0.31.1", "against": "previous", "verdict": "same", "control": "False"},
        {"older": "0.31.1", "newer": "0.32.4", "against": "previous", "verdict": "regression", "control": "False"},
        {"older": "0.31.1", "newer": "0.32.4", "against": "previous", "verdict": "undecided", "control": "False"},
        {"older": "0.31.1", "newer": "0.32.4", "against": "previous", "verdict": "same", "control": "True"},
        {"older": "0.29.4", "newer": "0.32.4", "against": "oldest", "verdict": "regression", "control": "False"},
    ]
    assert run_reports.verdict_table(rows) == [
        "  mlx 0.31.1 -> 0.32.4: 1 regression, 0 faster, 0 same, 1 undecided",
        "  mlx 0.29.4 -> 0.31.1: 0 regression, 0 faster, 1 same, 0 undecided",
    ]


def test_verdicts_list_regressions_first(tmp_path):
    csv = tmp_path / "versions.csv"
    csv.write_text(
        "case_id,verdict,control\na,same,False\nb,faster,False\nc,regression,False\nd,regression,True\ne,regression,False\n"
    )
    assert [row["case_id"] for row in run_reports.read_verdicts(csv)] == ["c", "e", "a", "b", "d"]
    assert run_reports.read_verdicts(tmp_path / "missing.csv") == []


def test_nothing_saved_skips_the_report(session, capsys):
    assert session.run("0.99.0", "--passes", "1") == versions.EXIT_INCOMPLETE
    assert session.reports == [] and "nothing to compare" in capsys.readouterr().out


def test_dry_run_prints_the_plan_and_runs_nothing(session, capsys):
    assert session.run("0.30.0", "0.31.1", "--passes", "2", "--dry-run", "--", "-k", "linear and not blog") == 0
    out = capsys.readouterr().out
    assert session.runner.runs == [] and not session.results.exists()
    assert not (session.tmp / "envs").exists()  # nothing built
    runs = [line for line in out.splitlines() if line.lstrip().startswith("[")]
    assert [line.split(":")[0].strip() for line in runs] == [
        "[1/4] pass 1 mlx 0.30.0",
        "[2/4] pass 1 mlx 0.31.1",
        "[3/4] pass 2 mlx 0.31.1",
        "[4/4] pass 2 mlx 0.30.0",
    ]
    assert "-k 'linear and not blog'" in runs[0]  # quoted, so it can be pasted into a shell
    assert shlex.split(runs[0].split(": ", 1)[1])[-2:] == ["-k", "linear and not blog"]
    assert "bench.report" in out and "to build" in out


def test_stream_logs_output_and_returns_status(tmp_path):
    log = tmp_path / "logs" / "run.log"
    cmd = [sys.executable, "-c", "print('hello'); raise SystemExit(3)"]
    assert runs._stream(cmd, tmp_path, None, log, echo=False, timeout=None) == 3
    assert "hello" in log.read_text()


def test_stream_stops_a_run_past_its_timeout(tmp_path):
    cmd = [sys.executable, "-c", "import time; print('start', flush=True); time.sleep(30)"]
    status = runs._stream(cmd, tmp_path, None, tmp_path / "run.log", echo=False, timeout=0.5)
    assert status != 0


def test_report_exit_1_counts_as_regression_only_with_its_table(session, capsys):
    session.report_status = 1  # the report's own verdict: a regression, table written
    assert session.run("0.30.0", "--passes", "1", "--fail-on-regression") == versions.EXIT_REGRESSION
    session.report_status = None  # a crash: exit 1, no table
    assert session.run("0.30.0", "--passes", "1", "--fail-on-regression") == versions.EXIT_INCOMPLETE
    assert "the report failed" in capsys.readouterr().out


def test_report_reads_only_the_runs_folder(tmp_path):
    cmd = run_reports.report_command(tmp_path, tmp_path / "report", 0.1, True)
    assert cmd[1:4] == ["-m", "bench.report", str(tmp_path / versions.RUNS_DIR)]
    assert cmd[-3:] == ["--threshold", "0.1", "--fail-on-regression"]


@pytest.mark.parametrize(
    "use_git", [pytest.param(True, marks=pytest.mark.skipif(shutil.which("git") is None, reason="no git here")), False]
)
def test_snapshot_copies_the_suite_and_nothing_else(tmp_path, use_git, monkeypatch):
    import subprocess

    root = tmp_path / "checkout"
    names = ("conftest.py", "bench/test_a.py", "bench/report/make_report.py", "tests/data/report/results/a.json")
    for name in names + ("results/Linux/0001_x.json", "bench/__pycache__/a.pyc", "notes.tmp"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(name)
    (root / ".gitignore").write_text("/results/*\n*.tmp\n__pycache__/\n")
    if use_git:
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        subprocess.run(["git", "-C", str(root), "add", "conftest.py"], check=True)  # bench/ stays untracked
    else:
        monkeypatch.setattr(runs, "_git", lambda *args: None)
    info = versions.snapshot_suite(tmp_path / "copy", root)
    copied = sorted(str(p.relative_to(tmp_path / "copy")) for p in (tmp_path / "copy").rglob("*") if p.is_file())
    # Folders named like results/ or report/ below the top level are suite code; untracked files count only
    # in the suite's own folders (bench/, benchmarks/, ...), where a user may be writing a new benchmark.
    expected = ["bench/report/make_report.py", "bench/test_a.py", "conftest.py"]
    assert copied == expected and info["files"] == len(expected)
    (root / "bench/test_a.py").write_text("edited later")
    assert (tmp_path / "copy/bench/test_a.py").read_text() == "bench/test_a.py"


@pytest.mark.parametrize(
    "use_git", [pytest.param(True, marks=pytest.mark.skipif(shutil.which("git") is None, reason="no git here")), False]
)
def test_snapshot_leaves_an_untracked_venv_and_copies_links_as_links(tmp_path, use_git, monkeypatch):
    import subprocess

    root = tmp_path / "checkout"
    (root / "bench").mkdir(parents=True)
    (root / "bench" / "a.py").write_text("code")
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"x" * 100_000)
    (root / "bench" / "link.py").symlink_to(outside)  # never copied as the 100 kB it leads to
    venv = root / "venv"  # the user's own environment, untracked and not ignored
    (venv / "lib").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (venv / "lib" / "big.so").write_bytes(b"y" * 100_000)
    (venv / "lib" / "python").symlink_to(outside)
    inner = root / "bench" / "env"  # a venv inside the suite's own folder is not the suite either
    inner.mkdir()
    (inner / "pyvenv.cfg").write_text("home = /usr/bin\n")
    if use_git:
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        subprocess.run(["git", "-C", str(root), "add", "bench/a.py"], check=True)
    else:
        monkeypatch.setattr(runs, "_git", lambda *args: None)
    info = versions.snapshot_suite(tmp_path / "copy", root)
    copy = tmp_path / "copy"
    names = sorted(str(p.relative_to(copy)) for p in copy.rglob("*") if p.is_file() or p.is_symlink())
    assert names == ["bench/a.py", "bench/link.py"] and info["bytes"] == len("code")
    assert (copy / "bench" / "link.py").is_symlink() and os.readlink(copy / "bench" / "link.py") == str(outside)


def test_a_snapshot_past_its_size_cap_is_one_line_before_any_results_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(runs, "SNAPSHOT_CAP_BYTES", 1_000)  # the suite itself is larger than this
    results = tmp_path / "results"
    with pytest.raises(SystemExit) as stop:
        versions.main(["0.30.0", "0.32.4", "--results", str(results)])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == versions.EXIT_USAGE and len(err.splitlines()) == 1
    assert "would pass 0 MiB" in err and "Traceback" not in err and not results.exists()
    with pytest.raises(runs.SnapshotError, match="would pass"):
        versions.snapshot_suite(tmp_path / "copy")
    assert not (tmp_path / "copy").exists()  # refused before a file was copied


def test_ctrl_c_keeps_what_was_saved(session, capsys):
    session.runner.interrupt_at = 2  # Ctrl-C during the second run
    assert session.run("0.30.0", "0.32.4", "--passes", "1") == 130
    assert saved(session.results) == ["mlx-0.30.0-pass1.json"]
    assert json.loads((session.results / versions.MANIFEST_NAME).read_text())["interrupted"] is True
    assert session.reports == []


def test_a_run_stopped_by_the_timeout_is_reported_as_a_timeout(session, capsys, monkeypatch):
    def hangs(cmd, cwd, env, log, echo, timeout):
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("collected 4 items\n")
        time.sleep(timeout)  # the timer fires; pytest ends on SIGTERM
        return -15

    monkeypatch.setattr(runs, "_stream", hangs)
    status = session.run("0.30.0", "0.32.4", "--passes", "1", "--timeout", "0.05")
    assert status == versions.EXIT_INCOMPLETE
    manifest = json.loads((session.results / versions.MANIFEST_NAME).read_text())
    assert [r["status"] for r in manifest["runs"]] == ["timeout", "timeout"]
    assert {"cpu_model", "cpu_count", "memory_bytes", "host"} <= set(manifest["machine"])
    assert all(r["summary"].startswith("timeout: stopped after --timeout 0.05 s") for r in manifest["runs"])


def test_the_report_runs_from_the_snapshot(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(
        run_reports.subprocess, "run", lambda cmd, cwd: calls.append(cwd) or subprocess.CompletedProcess(cmd, 0)
    )
    (tmp_path / versions.SUITE_DIR / "bench" / "report").mkdir(parents=True)
    assert run_reports.run_report(tmp_path, tmp_path / "report", 0.1, False) == 0
    assert calls == [tmp_path / versions.SUITE_DIR]


def test_environments_are_built_with_uv_where_it_is_installed_else_pip(tmp_path, monkeypatch):
    for uv in ("/usr/bin/uv", None):
        fake = FakeInstaller()
        monkeypatch.setattr(environments, "_call", fake)
        monkeypatch.setattr(environments, "find_uv", lambda uv=uv: uv)
        versions.ensure_env("0.30.0", EnvCache(tmp_path / str(bool(uv))), PINS)
        install = next(c for c in fake.calls if "install" in c)
        assert install[:3] == (["/usr/bin/uv", "pip", "install"] if uv else [install[0], "-m", "pip"])


def test_the_installer_is_recorded_and_read_back_per_environment(tmp_path, monkeypatch):
    monkeypatch.setattr(environments, "_call", FakeInstaller())
    for uv, expected in (("/usr/bin/uv", "uv"), (None, "pip")):
        monkeypatch.setattr(environments, "find_uv", lambda uv=uv: uv)
        python, _ = versions.ensure_env("0.30.0", EnvCache(tmp_path / expected), PINS)
        assert environments.installer_of(python) == expected
    assert environments.installer_of(tmp_path / "nowhere" / "bin" / "python") is None


def test_uv_is_found_beside_the_interpreter_before_path(tmp_path, monkeypatch):
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    monkeypatch.setattr(environments.sys, "executable", str(bin_dir / "python"))
    monkeypatch.setattr(environments.shutil, "which", lambda name: "/usr/local/bin/uv" if name == "uv" else None)
    assert environments.find_uv() == "/usr/local/bin/uv"  # none beside it: PATH's
    (bin_dir / "uv").write_text("#!/bin/sh\n")
    (bin_dir / "uv").chmod(0o755)
    assert environments.find_uv() == str(bin_dir / "uv")  # the one installed with the suite
    monkeypatch.setattr(environments.shutil, "which", lambda name: None)
    (bin_dir / "uv").unlink()
    assert environments.find_uv() is None  # pip then builds


def test_uv_is_a_requirement_of_the_runner_never_pinned_into_a_release_environment():
    assert "uv" in {r.name for r in versions.read_requirements(versions.REQUIREMENTS.read_text())}
    pins = versions.pin_set("uv>=0.4\nnumpy>=1.26\n", {"uv": "0.5.1", "numpy": "2.1.0"}.get, lambda name: [])
    assert pins.pins == ("numpy==2.1.0",) and not pins.notes


def test_clear_envs_deletes_only_this_suites_environments(tmp_path, capsys):
    cache = tmp_path / "cache"
    ours = cache / "mlx-0.30.0"
    half = cache / "mlx-0.31.0"
    (ours / "bin").mkdir(parents=True)
    (ours / environments.MARKER_NAME).write_text(json.dumps({"suite": env_ownership.SUITE_IDENTITY}))
    claimed(half)
    checkout = cache / "mlx-examples"
    (checkout / ".git").mkdir(parents=True)
    (checkout / "README.md").write_text("keep")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "precious.txt").write_text("keep")
    (cache / "mlx-link").symlink_to(elsewhere, target_is_directory=True)
    assert versions.main(["--clear-envs", "--cache-dir", str(cache)]) == versions.EXIT_OK
    assert not ours.exists() and not half.exists()
    assert (checkout / "README.md").read_text() == "keep" and (checkout / ".git").is_dir()
    assert (elsewhere / "precious.txt").read_text() == "keep" and (cache / "mlx-link").is_symlink()
    assert "removed" in capsys.readouterr().out
    # Named: a link under a release's name that leads out of the cache is left, in one line, no traceback.
    (cache / "mlx-0.32.4").symlink_to(elsewhere, target_is_directory=True)
    assert versions.main(["--clear-envs", "0.32.4", "--cache-dir", str(cache)]) == versions.EXIT_OK
    assert (elsewhere / "precious.txt").read_text() == "keep" and (cache / "mlx-0.32.4").is_symlink()
    assert "nothing to remove" in capsys.readouterr().out


# ---------------------------------------------------------------- the results folder's files


def test_a_results_folder_used_before_is_refused_and_left_as_it_was(session, capsys):
    # Case: a second session with the same --results replaced the first one's verdicts and measurements.
    assert session.run("0.30.0", "0.32.4", "--passes", "1") == versions.EXIT_OK
    first = session.results
    before = {p: p.read_bytes() for p in first.rglob("*") if p.is_file()}
    capsys.readouterr()
    ours = ["--cache-dir", str(session.tmp / "envs"), "--results", str(first), "--sizes", "2000x20"]
    with pytest.raises(SystemExit) as stop:
        versions.main([*ours, "--mode", "runs", "0.30.0", "0.32.4", "--passes", "1"])
    assert stop.value.code == versions.EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "already holds an earlier session's files" in err
    assert {p: p.read_bytes() for p in first.rglob("*") if p.is_file()} == before
    assert len(session.runner.runs) == 2  # the second session ran nothing


def test_an_empty_results_folder_is_used(session, tmp_path):
    (tmp_path / "empty").mkdir()
    session.results = tmp_path / "empty"
    ours = ["--cache-dir", str(tmp_path / "envs"), "--results", str(tmp_path / "empty"), "--sizes", "2000x20"]
    assert versions.main([*ours, "--mode", "runs", "0.30.0", "0.32.4", "--passes", "1"]) == versions.EXIT_OK
    assert (tmp_path / "empty" / versions.MANIFEST_NAME).is_file()


def test_a_failed_report_keeps_the_earlier_table_and_does_not_take_it_for_its_own(session, tmp_path, capsys):
    # Case: versions.csv was deleted before the report ran; a report that then failed left the page without its table.
    out = tmp_path / "report"
    out.mkdir()
    old = "machine,case_id,backend,control,older,newer,against,verdict,comparison_status\nm,c,mlx,False,0.1,0.2,previous,regression,ok\n"
    (out / "versions.csv").write_text(old)
    session.report_status = None  # the report crashes before writing anything
    status = session.run("0.30.0", "0.32.4", "--passes", "1", "--out", str(out), "--fail-on-regression")
    assert (out / "versions.csv").read_text() == old
    assert status == versions.EXIT_INCOMPLETE  # not a regression: the old table is not this report's
    assert "REGRESSION" not in capsys.readouterr().out


def test_a_full_disk_keeps_the_previous_record_and_ends_in_one_line(session, monkeypatch, capsys):
    # Case: versions-run.json was truncated in place on a full disk, and the OSError ended in a traceback.
    import errno
    import os

    from bench.results import files

    real_fsync, calls = os.fsync, []

    def fsync(fd):
        calls.append(fd)
        if len(calls) > 2:  # the first records are written; then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(files.os, "fsync", fsync)
    status = session.run("0.30.0", "0.32.4", "--passes", "1")
    err = capsys.readouterr().err.strip()
    assert status == versions.EXIT_INCOMPLETE
    assert len(err.splitlines()) == 1 and "No space left on device" in err and "Traceback" not in err
    record = json.loads((session.results / versions.MANIFEST_NAME).read_text())  # whole, as last written
    assert record["releases"] == ["0.30.0", "0.32.4"]
    assert not [p for p in session.results.iterdir() if p.name.startswith(".")]  # no temporary file left
