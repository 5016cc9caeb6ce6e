"""Which MLX releases are published, and which of them can install here: the package index, asked once.

On Linux `mlx[cpu]==V` installs the `mlx-cpu` wheel of the same version, so a
release installs only where both `mlx` and `mlx-cpu` published it (CUDA
extras likewise pull `mlx-cuda`). Pre-releases are left out of ranges: the
history and bisection follow what users install.
"""

from __future__ import annotations

import re
import subprocess
import sys

from packaging.version import InvalidVersion, Version

_AVAILABLE = re.compile(r"Available versions:\s*(.+)")
# The package the extra pulls in beside `mlx` (bench.versions.targets.mlx_requirement picks the extra).
BACKEND_PACKAGES = {"cpu": "mlx-cpu", "cuda12": "mlx-cuda", "cuda13": "mlx-cuda"}


def backend_package(extra: str | None) -> str | None:
    """The package `mlx[extra]` pulls in beside mlx on this platform (Linux: mlx-cpu by default), or None."""
    extra = extra or ("cpu" if sys.platform.startswith("linux") else None)
    return BACKEND_PACKAGES[extra] if extra else None


def published_releases(package: str = "mlx") -> list[str]:
    """Every published release of `package`, from `pip index versions`; [] when the index cannot be read."""
    proc = subprocess.run([sys.executable, "-m", "pip", "index", "versions", package], capture_output=True, text=True)
    match = _AVAILABLE.search(proc.stdout)
    return [v.strip() for v in match.group(1).split(",")] if match else []


def final_releases(available: list[str]) -> list[str]:
    """The final (non pre-)releases among `available`, oldest first, repeats and unreadable names dropped."""
    found = set()
    for text in available:
        try:
            version = Version(text)
        except InvalidVersion:
            continue
        if not version.is_prerelease and not version.is_devrelease:
            found.add(str(version))
    return sorted(found, key=Version)


def releases_between(available: list[str], old: str, new: str) -> list[str]:
    """The final releases in (old, new], oldest first."""
    return [v for v in final_releases(available) if Version(old) < Version(v) <= Version(new)]


def releases_in_range(
    available: list[str], backend: list[str] | None, first: str | None, last: str | None, package: str = "mlx-cpu"
) -> tuple[list[str], dict[str, str]]:
    """(the final releases in [first, last] that can install, {release in range: why it cannot}).

    backend: the releases of the backend package the extra pulls in (None where
    there is none, as on macOS); a release missing there cannot install.
    """
    low = Version(first) if first else None
    high = Version(last) if last else None
    wanted = [
        v
        for v in final_releases(available)
        if (low is None or Version(v) >= low) and (high is None or Version(v) <= high)
    ]
    if backend is None:
        return wanted, {}
    have = {str(Version(v)) for v in final_releases(backend)}
    usable = [v for v in wanted if v in have]
    refused = {v: f"the index has no {package} {v}, which its install needs" for v in wanted if v not in have}
    return usable, refused
