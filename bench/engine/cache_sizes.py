"""The CPU's data caches as the operating system reports them: each level's size and how many CPUs share it.

The cache-aware roofline (docs/stable-numbers.md, "The machine's own limits")
bounds a case by the bandwidth of the level its data fits in, so it needs each
level's size. Linux says it in /sys/devices/system/cpu/cpu0/cache (which a VM
reports as the guest sees it); macOS through sysctl (the performance cores'
levels); glibc's sysconf is the last resort, since on some VMs it reports the
host's whole L3 rather than the guest's share. Levels beyond L3 are not read.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

LEVELS = ("L1", "L2", "L3")
SYSFS_CACHE = Path("/sys/devices/system/cpu/cpu0/cache")
_SIZE = re.compile(r"^\s*(\d+)\s*([KMG]?)", re.IGNORECASE)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


@dataclass(frozen=True)
class CacheLevel:
    """One data (or unified) cache level: its name, the size of one instance and how many CPUs share it."""

    name: str
    size_bytes: int
    shared_by: int  # CPUs that share one instance (1: private to a core's thread)

    def capacity_bytes(self, cpus: int) -> int:
        """What all the instances that `cpus` CPUs reach hold together (private caches add up across cores)."""
        instances = max(1, -(-cpus // max(1, self.shared_by)))
        return self.size_bytes * instances


def parse_size(text: str) -> int | None:
    """Bytes of a sysfs cache size such as ``48K`` or ``32768K``, or None when unreadable."""
    match = _SIZE.match(text)
    return int(match.group(1)) * _UNITS[match.group(2).upper()] if match else None


def count_cpus(cpu_list: str) -> int:
    """CPUs in a sysfs list such as ``0-3,8-11``."""
    count = 0
    for part in filter(None, (p.strip() for p in cpu_list.split(","))):
        low, _, high = part.partition("-")
        count += int(high or low) - int(low) + 1
    return count


def sysfs_levels(root: Path = SYSFS_CACHE) -> list[CacheLevel]:
    """Data and unified cache levels of cpu0 under a sysfs cache folder, smallest level first."""
    found: dict[int, CacheLevel] = {}
    for index in sorted(root.glob("index*")) if root.is_dir() else []:
        try:
            level = int((index / "level").read_text())
            kind = (index / "type").read_text().strip()
            size = parse_size((index / "size").read_text())
            shared = (index / "shared_cpu_list").read_text() if (index / "shared_cpu_list").exists() else "0"
        except (OSError, ValueError):
            continue
        if kind in ("Data", "Unified") and size and 1 <= level <= len(LEVELS):
            found[level] = CacheLevel(LEVELS[level - 1], size, max(1, count_cpus(shared)))
    return [found[level] for level in sorted(found)]


def _sysctl(name: str) -> int | None:
    """An integer sysctl value (macOS), or None when the key is absent."""
    try:
        out = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, check=True, timeout=5).stdout
        return int(out.strip())
    except (OSError, ValueError, subprocess.SubprocessError):
        return None


def sysctl_levels() -> list[CacheLevel]:
    """The performance cores' cache levels on macOS (Apple silicon reports L1 and L2; its SLC is not listed)."""
    levels = []
    for name, key, shared_key in (
        ("L1", "l1dcachesize", None),
        ("L2", "l2cachesize", "cpusperl2"),
        ("L3", "l3cachesize", "cpusperl3"),
    ):
        size = _sysctl(f"hw.perflevel0.{key}") or _sysctl(f"hw.{key}")
        if size:
            shared = _sysctl(f"hw.perflevel0.{shared_key}") if shared_key else 1
            levels.append(CacheLevel(name, size, shared or (1 if name != "L3" else os.cpu_count() or 1)))
    return levels


def sysconf_levels() -> list[CacheLevel]:
    """glibc's cache sizes (sharing unknown: L1 and L2 taken as private, L3 as shared by every CPU)."""
    levels = []
    for name, key in (("L1", "SC_LEVEL1_DCACHE_SIZE"), ("L2", "SC_LEVEL2_CACHE_SIZE"), ("L3", "SC_LEVEL3_CACHE_SIZE")):
        try:
            size = os.sysconf(key)
        except (ValueError, OSError):
            continue
        if size and size > 0:
            levels.append(CacheLevel(name, int(size), 1 if name != "L3" else os.cpu_count() or 1))
    return levels


def cache_levels() -> tuple[list[CacheLevel], str]:
    """This machine's data cache levels, smallest first, and where they were read ("" when nowhere)."""
    for source, read in (("sysfs", sysfs_levels), ("sysctl", sysctl_levels), ("sysconf", sysconf_levels)):
        if source == "sysctl" and sys.platform != "darwin":
            continue
        levels = read()
        if levels:
            return levels, source
    return [], ""
