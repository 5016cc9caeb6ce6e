"""The package: one version, dependencies read from the requirements files, the console command, the changelog."""

from __future__ import annotations

import tomllib
import warnings
from pathlib import Path

import bench

ROOT = Path(__file__).resolve().parents[1]


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def expanded() -> dict:
    """pyproject.toml as setuptools reads it, its dynamic fields filled in."""
    from setuptools.config.pyprojecttoml import read_configuration

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_configuration(ROOT / "pyproject.toml", expand=True)["project"]


def requirements(name: str) -> list[str]:
    lines = (ROOT / name).read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def test_the_version_is_read_from_bench():
    config = pyproject()
    assert "version" in config["project"]["dynamic"]
    assert config["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "bench.__version__"}
    assert expanded()["version"] == bench.__version__ == "0.1.0"


def test_dependencies_are_the_requirements_files():
    project = expanded()
    assert project["dependencies"] == requirements("requirements.txt")
    extras = project.get("optional-dependencies", project.get("optional_dependencies"))
    assert extras == {"peers": requirements("requirements-peers.txt"), "dev": requirements("requirements-dev.txt")}


def test_one_console_command():
    assert pyproject()["project"]["scripts"] == {"mlx-sgd-bench": "bench.console.command:console"}


def test_the_changelog_has_an_entry_for_this_version():
    assert f"## [{bench.__version__}] - " in (ROOT / "CHANGELOG.md").read_text()
    assert "MIT License" in (ROOT / "LICENSE").read_text()


def test_every_result_records_the_suites_version(monkeypatch):
    import bench.backends
    from bench.engine import run_environment

    monkeypatch.setattr(bench.backends, "all_backends", lambda: [])
    assert run_environment.collect()["mlx_sgd_bench_version"] == bench.__version__
