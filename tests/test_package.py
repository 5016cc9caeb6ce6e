"""The package: one version, dependencies read from the requirements files, the console command, the changelog.

The pyproject is checked as data (tomllib) and with the `packaging` library that pytest itself depends on, so
the checks hold in any environment the README's set-up makes: a fresh venv carries whatever setuptools its
Python ships (65 on Python 3.11, none from 3.12 on), while `pip install -e .` builds in an isolated environment
with the `setuptools>=77` that `[build-system]` asks for. The one check that needs setuptools' own reader
runs where that setuptools is installed (requirements-dev.txt brings it, so CI's second step runs it).
"""

from __future__ import annotations

import ast
import sys
import tomllib
import warnings
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

import bench

ROOT = Path(__file__).resolve().parents[1]
# The setuptools that reads an SPDX `license` string and `license-files` (PEP 639).
SETUPTOOLS_FOR_PEP_639 = Version("77")


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def requirements(name: str) -> list[str]:
    lines = (ROOT / name).read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def version_in_source() -> str:
    """bench.__version__ as written in bench/__init__.py, read the way setuptools' `attr:` reads it (statically)."""
    tree = ast.parse((ROOT / "bench" / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__version__" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("bench/__init__.py assigns no __version__")


def test_the_version_is_read_from_bench():
    config = pyproject()
    assert "version" in config["project"]["dynamic"]
    assert config["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "bench.__version__"}
    assert version_in_source() == bench.__version__ == "0.1.0"
    assert str(Version(bench.__version__)) == bench.__version__


def test_dependencies_are_the_requirements_files():
    dynamic = pyproject()["tool"]["setuptools"]["dynamic"]
    assert dynamic["dependencies"] == {"file": ["requirements.txt"]}
    assert dynamic["optional-dependencies"] == {
        "peers": {"file": ["requirements-peers.txt"]},
        "dev": {"file": ["requirements-dev.txt"]},
    }
    for name in ("requirements.txt", "requirements-peers.txt", "requirements-dev.txt"):
        for line in requirements(name):
            Requirement(line)  # raises InvalidRequirement on a line pip would reject


def test_the_build_system_reads_the_license_form_used():
    config = pyproject()
    assert config["project"]["license"] == "MIT"
    assert config["project"]["license-files"] == ["LICENSE"]
    (build_requirement,) = [Requirement(r) for r in config["build-system"]["requires"]]
    assert build_requirement.name == "setuptools"
    assert build_requirement.specifier == SpecifierSet(f">={SETUPTOOLS_FOR_PEP_639}")


def test_every_python_the_project_claims_is_a_classifier():
    config = pyproject()["project"]
    claimed = SpecifierSet(config["requires-python"])
    listed = [
        c.rsplit(" :: ", 1)[1] for c in config["classifiers"] if c.startswith("Programming Language :: Python :: 3.")
    ]
    assert listed and all(Version(v) in claimed for v in listed)
    assert f"{sys.version_info.major}.{sys.version_info.minor}" in listed, "the Python running the tests is not listed"


def test_setuptools_reads_the_pyproject_as_these_tests_do():
    setuptools = pytest.importorskip("setuptools", reason="no setuptools here; `pip install -e .` brings its own")
    if Version(setuptools.__version__) < SETUPTOOLS_FOR_PEP_639:
        pytest.skip(
            f"setuptools {setuptools.__version__} predates PEP 639; `pip install -e .` builds with setuptools>=77 "
            "in its own environment (pip install -r requirements-dev.txt brings it here)"
        )
    from setuptools.config.pyprojecttoml import read_configuration

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        project = read_configuration(ROOT / "pyproject.toml", expand=True)["project"]
    assert project["version"] == bench.__version__
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
