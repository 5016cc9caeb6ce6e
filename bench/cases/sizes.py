"""Problem-size grids as data, the ``--sizes`` parser and the memory budget.

Grids are append-only: adding a size never changes the data of another size
(see ``bench.cases.datasets``), so results saved before stay comparable.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from bench.cases.identity import size_id


@dataclass(frozen=True, order=True)
class Size:
    """One problem size: examples x features."""

    n_examples: int
    n_features: int

    @property
    def id(self) -> str:
        """Readable case-id fragment, e.g. ``n1000-d100``."""
        return size_id(self.n_examples, self.n_features)


BLOG_SIZE = Size(1_000, 100)

# The default grid: small to large, the blog's 1,000 x 100 included. Each row is
# (examples, features); together they finish `pytest --benchmark-only` in minutes.
QUICK = (
    Size(1_000, 10),
    BLOG_SIZE,
    Size(10_000, 100),
    Size(10_000, 1_000),
    Size(100_000, 100),
)

# The quick grid's sizes for backends that trim it (Backend.quick_sizes: the peers, whose
# compiles and first calls make each case cost seconds): the blog's size, a memory-bound
# and a compute-heavy one. `--sizes quick` then stays within minutes with them installed.
QUICK_PEERS = (BLOG_SIZE, Size(10_000, 100), Size(10_000, 1_000))

# Larger problems for a long run on a big machine.
FULL = QUICK + (
    Size(1_000, 1_000),
    Size(100_000, 1_000),
    Size(1_000_000, 100),
)

GRIDS = {"quick": QUICK, "full": FULL}

_SIZE_PATTERN = re.compile(r"^\s*([0-9_]+)\s*[xX]\s*([0-9_]+)\s*$")


class SizeError(ValueError):
    """A ``--sizes`` value that cannot be understood."""


def parse_sizes(value: str) -> tuple[Size, ...]:
    """Turn ``quick``, ``full`` or ``5000x50,20000x200`` into a tuple of sizes."""
    value = value.strip()
    if value.lower() in GRIDS:
        return GRIDS[value.lower()]
    sizes = []
    for part in value.split(","):
        match = _SIZE_PATTERN.match(part)
        if not match:
            raise SizeError(
                f"--sizes: cannot read {part.strip()!r}; expected 'quick', 'full' "
                "or a comma-separated list like 5000x50,20000x200"
            )
        n, d = (int(g.replace("_", "")) for g in match.groups())
        if n < 2 or d < 1:
            raise SizeError(f"--sizes: {part.strip()!r} needs at least 2 examples and 1 feature")
        sizes.append(Size(n, d))
    # Keep the user's order but drop repeats: a case id must be unique.
    return tuple(dict.fromkeys(sizes))


def available_memory_bytes() -> int:
    """Memory the OS says is available now (Linux), else physical memory."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def default_memory_budget() -> int:
    """Half of the available memory: room for the OS, pytest and a second backend."""
    return available_memory_bytes() // 2


def estimated_case_bytes(size: Size, hidden: int = 0) -> int:
    """Upper estimate of the memory one case needs at this size, in bytes.

    The design matrix is held as float32 by the problem cache (bench.cases.datasets:
    one (model, size) at a time, the case's own), as float64 (the blog's `seed`
    variant and the reference solver) and once more by the backend under test
    (MLX, PyTorch and JAX copy it to their own arrays); an MLP adds its
    n x hidden activations and their gradients (float64 in the reference).
    """
    x_elems = size.n_examples * size.n_features
    act_elems = size.n_examples * hidden
    return x_elems * (4 + 8 + 4) + act_elems * (4 * 4 + 8 * 4) + 64 * 2**20
