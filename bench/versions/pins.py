"""What every release environment installs besides MLX: the host's versions of the suite's requirements."""

from __future__ import annotations

import importlib.metadata
import re
import sys
from dataclasses import dataclass

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

# Tools of the runner itself, listed in requirements.txt so the set-up installs them, never put into a release
# environment: uv builds the environments and is no part of what is measured.
RUNNER_ONLY = frozenset({"uv"})
# mlx, mlx-cpu, mlx-metal, mlx-cuda-12...: the packages that *are* the release under test.
_MLX_DIST = re.compile(r"^mlx(-|$)")
_COMMENT = re.compile(r"(^|\s)#.*$")


@dataclass(frozen=True)
class PinSet:
    """What every environment installs besides MLX, and what could not be pinned."""

    pins: tuple[str, ...]
    notes: tuple[str, ...] = ()


def _installed_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _installed_requires(name: str) -> list[str]:
    try:
        return importlib.metadata.requires(name) or []
    except importlib.metadata.PackageNotFoundError:
        return []


def is_mlx_distribution(name: str) -> bool:
    """Whether a distribution belongs to MLX itself (mlx, mlx-cpu, mlx-metal, ...)."""
    return bool(_MLX_DIST.match(canonicalize_name(name)))


def read_requirements(text: str) -> list[Requirement]:
    """The requirements of a requirements.txt, comments and pip options dropped."""
    found = []
    for raw in text.splitlines():
        line = _COMMENT.sub("", raw).strip()  # pip's rule: '#' at the start or after a space
        if not line or line.startswith("-"):  # blank, comment, or an option like -r / --index-url
            continue
        found.append(Requirement(line))
    return found


def _applies(req: Requirement, extras: frozenset[str], marker_env: dict) -> bool:
    if req.marker is None:
        return True
    # A dependency behind an extra applies only when that extra was asked for.
    return any(req.marker.evaluate({**marker_env, "extra": extra}) for extra in (extras or {""}))


def pin_set(
    requirements_text: str,
    version_of=_installed_version,
    requires_of=_installed_requires,
    marker_env: dict | None = None,
) -> PinSet:
    """`name==version` for every non-MLX requirement and its dependencies, as installed here.

    Dependencies are followed too (pandas -> python-dateutil, pytest-benchmark
    -> py-cpuinfo2, ...): a transitive package left to float could differ
    between environments built on different days. A top-level requirement not
    installed here is kept as written, with a note.
    """
    env = dict(default_environment() if marker_env is None else marker_env)
    pins: dict[str, str] = {}
    notes: list[str] = []
    queue = [(req, True) for req in read_requirements(requirements_text) if _applies(req, frozenset(), env)]
    while queue:
        req, top_level = queue.pop(0)
        name = canonicalize_name(req.name)
        if is_mlx_distribution(name) or name in pins or (top_level and name in RUNNER_ONLY):
            continue
        version = version_of(name)
        if version is None:
            if top_level:
                spec = f"{name}{req.specifier}"
                pins[name] = spec
                notes.append(
                    f"{name} is not installed in {sys.executable}: every environment installs {spec!r}, unpinned"
                )
            continue  # a missing optional dependency: pip resolves it if anything needs it
        pins[name] = f"{name}=={version}"
        for dep_text in requires_of(name):
            try:
                dep = Requirement(dep_text)
            except InvalidRequirement:
                continue  # a malformed line in someone's metadata: pip will complain if it matters
            if _applies(dep, frozenset(req.extras), env):
                queue.append((dep, False))
    return PinSet(tuple(pins[k] for k in sorted(pins)), tuple(notes))


def mlx_spec(release: str, system: str | None = None) -> str:
    """The pip requirement for one MLX release on this OS."""
    system = system or sys.platform
    # Linux wheels need the [cpu] extra for a CPU backend (it pulls mlx-cpu of the same version).
    return f"mlx[cpu]=={release}" if system.startswith("linux") else f"mlx=={release}"
