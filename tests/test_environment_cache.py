"""The environment cache deletes and reuses only what the suite built, never what another session uses, follows no link."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import versions
from bench.versions import EnvCache, InstallError, PinSet, env_ownership, environments
from tests.test_versions import FakeInstaller

ROOT = Path(__file__).resolve().parents[1]
PINS = PinSet(("numpy==2.0.0", "pytest==8.0.0"))
needs_flock = pytest.mark.skipif(env_ownership.fcntl is None, reason="no fcntl here")


@pytest.fixture
def built(tmp_path, monkeypatch):
    """A cache with mlx 0.30.0 built by the (fake) installer, and the cache's user's other files beside it."""
    monkeypatch.setattr(environments, "_call", FakeInstaller())
    cache = EnvCache(tmp_path / "cache")
    versions.ensure_env("0.30.0", cache, PINS)
    env_ownership.let_go(cache.path("0.30.0"))  # as a later session finds it: nobody using it
    return cache


def user_venv(path: Path) -> Path:
    """A user's own virtual environment with notes in it: pyvenv.cfg and all, but not built by the suite."""
    (path / "bin").mkdir(parents=True)
    (path / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (path / "notes.md").write_text("my notes")
    return path


def test_clear_envs_leaves_a_users_own_mlx_named_environment(built, capsys):
    playground = user_venv(built.root / "mlx-playground")
    lookalike = user_venv(built.root / "mlx-0.31.0")  # even under a release's name
    assert versions.main(["--clear-envs", "--cache-dir", str(built.root)]) == versions.EXIT_OK
    assert (playground / "notes.md").read_text() == "my notes" and (lookalike / "notes.md").read_text() == "my notes"
    assert not built.path("0.30.0").exists()  # the suite's own is gone
    versions.main(["--clear-envs", "0.31.0", "--cache-dir", str(built.root)])
    out = capsys.readouterr().out
    assert f"left {lookalike}: not one of this suite's environments" in out and (lookalike / "notes.md").exists()


def test_a_users_venv_under_a_release_name_is_not_rebuilt_over(tmp_path, monkeypatch):
    monkeypatch.setattr(environments, "_call", FakeInstaller())
    cache = EnvCache(tmp_path)
    mine = user_venv(cache.path("0.30.0"))  # pyvenv.cfg, no marker: looked like "an earlier build did not finish"
    with pytest.raises(InstallError, match="is not one of this suite's environments") as info:
        versions.ensure_env("0.30.0", cache, PINS)
    assert "\n" not in str(info.value) and (mine / "notes.md").read_text() == "my notes"


def test_a_completion_marker_written_before_the_owner_file_still_counts(tmp_path):
    path = tmp_path / "mlx-0.30.0"
    path.mkdir()
    legacy = {"release": "0.30.0", "spec": "mlx[cpu]==0.30.0", "pins": [], "created": "2026-01-01T00:00:00"}
    (path / env_ownership.MARKER_NAME).write_text(json.dumps(legacy))
    assert env_ownership.owned(path)
    (path / env_ownership.MARKER_NAME).write_text(json.dumps(dict(legacy, release="0.31.0")))
    assert not env_ownership.owned(path)


def hold_in_another_process(env_dir: Path) -> subprocess.Popen:
    """Another session whose workers run from `env_dir`: it holds the environment's use lock, then waits."""
    code = (
        "import sys, time; from pathlib import Path; from bench.versions import env_ownership; "
        "env_ownership.hold(Path(sys.argv[1])); print('held', flush=True); time.sleep(60)"
    )
    other = subprocess.Popen(
        [sys.executable, "-c", code, str(env_dir)],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert other.stdout.readline().strip() == "held"
    return other


@needs_flock
def test_an_environment_in_use_by_another_session_is_neither_cleared_nor_rebuilt(built, capsys):
    path = built.path("0.30.0")
    other = hold_in_another_process(path)
    try:
        assert versions.main(["--clear-envs", "--cache-dir", str(built.root)]) == versions.EXIT_OK
        out = capsys.readouterr().out
        assert f"left {path}: another session's workers are running from it" in out and path.is_dir()
        with pytest.raises(InstallError, match="another session's workers are running from it") as info:
            versions.ensure_env("0.30.0", built, PinSet(("numpy==2.1.0",)))  # a second session, other pins
        assert "\n" not in str(info.value) and built.marker("0.30.0")["pins"] == list(PINS.pins)
        # Reusing it as it is stays possible: both sessions hold it shared.
        assert versions.ensure_env("0.30.0", built, PINS)[1] == "ready"
    finally:
        other.kill()
        other.wait(10)
    assert built.clear() == [path] and not path.exists()  # the other session is gone (its lock with it): now it may go


@needs_flock
def test_a_planted_lock_file_link_is_refused_and_its_target_untouched(tmp_path, monkeypatch):
    monkeypatch.setattr(environments, "_call", FakeInstaller())
    cache = EnvCache(tmp_path / "cache")
    cache.root.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("the user's file")
    (cache.root / ".mlx-0.30.0.lock").symlink_to(victim)
    with pytest.raises(InstallError, match="is a symbolic link; refused") as info:
        versions.ensure_env("0.30.0", cache, PINS)
    assert "\n" not in str(info.value) and victim.read_text() == "the user's file"
    (cache.root / ".mlx-0.30.0.lock").unlink()
    (cache.root / ".mlx-0.30.0.in-use").symlink_to(victim)  # the use lock, planted the same way
    with pytest.raises(InstallError, match="is a symbolic link; refused"):
        versions.ensure_env("0.30.0", cache, PINS)
    assert victim.read_text() == "the user's file"


def test_a_planted_install_log_link_is_refused_and_its_target_untouched(tmp_path, monkeypatch):
    monkeypatch.setattr(environments, "_call", FakeInstaller())
    cache = EnvCache(tmp_path / "cache")
    cache.root.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("the user's file")
    (cache.root / "mlx-0.30.0.install.log").symlink_to(victim)
    with pytest.raises(InstallError, match="install.log is a symbolic link; refused") as info:
        versions.ensure_env("0.30.0", cache, PINS)
    assert "\n" not in str(info.value) and victim.read_text() == "the user's file"
    assert not cache.path("0.30.0").exists()  # the build it stopped is removed, as a failed one is


def test_a_planted_marker_link_is_refused_not_read(built, tmp_path):
    path = built.path("0.30.0")
    fake = tmp_path / "fake-marker.json"
    fake.write_text((path / env_ownership.MARKER_NAME).read_text())
    (path / env_ownership.MARKER_NAME).unlink()
    (path / env_ownership.MARKER_NAME).symlink_to(fake)
    assert built.marker("0.30.0") is None and not environments.is_environment(path)
    with pytest.raises(InstallError, match="mlx-sgd-bench-env.json is a symbolic link; refused") as info:
        versions.ensure_env("0.30.0", built, PINS)
    assert "\n" not in str(info.value) and fake.exists() and path.is_dir()
