"""What a RELEASE argument names: a published MLX version, or a local MLX wheel file; validated before any disk use.

A name becomes part of a folder path in the environment cache, so it must be a
plain version number (`0.32.4`, `0.33.0rc1`): anything else (a path, `..`, a
separator) is refused before the cache is touched. A local wheel is labelled by
its version and the first 12 hex digits of the file's SHA-256, so two builds of
one version never share an environment or a label.
"""

from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from bench.versions.pins import is_mlx_distribution

MLX_EXTRAS = ("cpu", "cuda12", "cuda13")
# A cache key: letters, digits and . _ + - only, never starting with a dot (no "..", no separators).
_SAFE_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_RELEASE = re.compile(r"^[0-9]+(\.[0-9]+)*((a|b|rc)[0-9]+)?(\.post[0-9]+)?(\.dev[0-9]+)?$")


class ReleaseError(ValueError):
    """A RELEASE argument that is neither a version number nor an MLX wheel file; one line."""


@dataclass(frozen=True)
class Target:
    """One release under test: its label, the version its mlx must report, what pip installs, its cache key."""

    label: str
    version: str
    spec: str
    key: str  # the environment folder is mlx-<key> in the cache
    wheel: str | None = None
    sha256: str | None = None


def safe_key(key: str) -> str:
    """`key` if it can name a folder inside the cache; ReleaseError otherwise."""
    if not _SAFE_KEY.match(key) or ".." in key:
        raise ReleaseError(f"{key!r} cannot name an environment (letters, digits and . _ + - only)")
    return key


def check_release_name(text: str) -> str:
    """A published release number as written, or ReleaseError: nothing else may reach the disk."""
    if not _RELEASE.match(text):
        raise ReleaseError(f"{text!r} is not an MLX release number (e.g. 0.32.4) or an MLX .whl file")
    try:
        Version(text)
    except InvalidVersion:
        raise ReleaseError(f"{text!r} is not an MLX release number") from None
    return text


def check_env_name(text: str) -> str:
    """A name --clear-envs may take: a release number, or the key of a derived environment (0.32.4-b, wheel-...)."""
    try:
        return check_release_name(text)
    except ReleaseError:
        if _SAFE_KEY.match(text) and ".." not in text and (text[0].isdigit() or text.startswith("wheel-")):
            return text
        raise


def mlx_requirement(version: str, extra: str | None = None, system: str | None = None) -> str:
    """The pip requirement of one published release: mlx[extra]==V (Linux defaults to the cpu extra)."""
    system = system or sys.platform
    if extra is None and system.startswith("linux"):
        extra = "cpu"  # Linux wheels need an extra for a backend (it pulls mlx-cpu of the same version)
    return f"mlx[{extra}]=={version}" if extra else f"mlx=={version}"


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def parse_target(text: str, extra: str | None = None, system: str | None = None) -> Target:
    """A RELEASE argument as a Target; ReleaseError with one line if it is neither a release nor an MLX wheel."""
    if text.endswith(".whl"):
        path = Path(text).expanduser()
        if not path.is_file():
            raise ReleaseError(f"{text}: no such wheel file")
        try:
            name, version, _, _ = parse_wheel_filename(path.name)
        except InvalidWheelFilename as error:
            raise ReleaseError(f"{text}: not a wheel file name ({error})") from None
        if not is_mlx_distribution(name):
            raise ReleaseError(f"{text}: a wheel of {name}, not of MLX")
        sha = file_sha256(path)
        label = f"{version}+{sha[:12]}"
        requirement = f"{name}[{extra}] @ {path.resolve().as_uri()}" if extra else f"{name} @ {path.resolve().as_uri()}"
        return Target(
            label, str(version), requirement, safe_key(f"wheel-{version}-{sha[:12]}"), str(path.resolve()), sha
        )
    version = check_release_name(text)
    key = version if extra in (None, "cpu") else f"{version}-{extra}"
    return Target(version, version, mlx_requirement(version, extra, system), safe_key(key))


def twin(target: Target, suffix: str) -> Target:
    """The same release in a second environment under another label (the self-test's A/A)."""
    return Target(
        f"{target.label}-{suffix}",
        target.version,
        target.spec,
        safe_key(f"{target.key}-{suffix}"),
        target.wheel,
        target.sha256,
    )
