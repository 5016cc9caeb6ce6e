"""Arrays that start on a cache line, so a kernel's speed never depends on where the allocator put its data.

NumPy promises 16-byte alignment, and where within a cache line an array
starts depends on everything the process allocated before it: glibc serves a
large block from a fresh mapping (a page boundary plus 16 bytes) until a large
block has been freed, and from its heap after that. The same kernel then runs
at two speeds. Measured (AMD EPYC VM, one pinned process, the NumPy float64
least-squares step at 1,000 x 100 that the blog's `seed` variant runs): 16.0-16.6
us per step with X 0, 32 or 64 bytes past a page boundary, 19.4-19.7 us at 8, 16
or 48 (docs/releases.md, "How releases are timed"). Two workers whose earlier
cases allocated differently measured the same NumPy 17-21% apart, session
after session: a control that "moved" between two MLX releases though NumPy
was the same.

So the problem's arrays and every copy a NumPy trainer makes of them start on
a CACHE_LINE boundary, whatever came before.
"""

from __future__ import annotations

import numpy as np

CACHE_LINE = 64  # bytes; a multiple of every vector width the kernels use (AVX2: 32, AVX-512: 64)


def is_aligned(array: np.ndarray) -> bool:
    """Whether the array's first byte is on a cache line."""
    return array.ctypes.data % CACHE_LINE == 0


def aligned(array, dtype=None) -> np.ndarray:
    """The array as `dtype` (its own by default), C-contiguous and starting on a cache line.

    An array that already is all of that is returned as it is (shared, not
    copied); anything else is copied into a new aligned buffer, which keeps
    the original's read-only flag.
    """
    source = np.asarray(array)
    dtype = np.dtype(dtype) if dtype is not None else source.dtype
    if source.dtype == dtype and source.flags.c_contiguous and is_aligned(source):
        return source
    nbytes = source.size * dtype.itemsize
    raw = np.empty(nbytes + CACHE_LINE, dtype=np.uint8)
    start = -raw.ctypes.data % CACHE_LINE
    copy = raw[start : start + nbytes].view(dtype).reshape(source.shape)
    copy[...] = source
    copy.setflags(write=source.flags.writeable)
    return copy
