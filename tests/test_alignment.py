"""Arrays on a cache line (bench.cases.alignment): the problem's data and the NumPy trainers' copies, whatever came before."""

import numpy as np
import pytest

from bench.backends import make_trainer
from bench.cases.alignment import CACHE_LINE, aligned, is_aligned
from bench.cases.case import Case
from bench.cases.datasets import make_problem
from bench.cases.sizes import Size


def at_offset(values: np.ndarray, offset: int) -> np.ndarray:
    """A copy of `values` starting `offset` bytes past a cache line."""
    raw = np.empty(values.nbytes + 2 * CACHE_LINE, dtype=np.uint8)
    start = -raw.ctypes.data % CACHE_LINE + offset
    copy = raw[start : start + values.nbytes].view(values.dtype).reshape(values.shape)
    copy[...] = values
    return copy


@pytest.mark.parametrize("offset", [0, 4, 8, 16, 32, 48, 60])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_any_placement_becomes_a_cache_line_start_with_the_same_values(offset, dtype):
    values = np.arange(300, dtype=np.float32).reshape(30, 10) / 7
    source = at_offset(values, offset)
    assert source.ctypes.data % CACHE_LINE == offset
    copy = aligned(source, dtype)
    assert is_aligned(copy) and copy.dtype == dtype and copy.shape == values.shape and copy.flags.c_contiguous
    np.testing.assert_array_equal(copy, values.astype(dtype))


def test_an_aligned_array_of_the_right_type_is_shared_and_a_read_only_one_stays_read_only():
    source = aligned(np.ones((8, 8), dtype=np.float32))
    assert aligned(source) is source
    source.setflags(write=False)
    widened = aligned(source, np.float64)
    assert not np.shares_memory(widened, source) and not widened.flags.writeable
    assert aligned(at_offset(np.zeros(5), 8)).flags.writeable


def test_a_non_contiguous_view_is_copied_in_order():
    values = np.arange(40, dtype=np.float64).reshape(5, 8)
    copy = aligned(values.T)
    assert is_aligned(copy) and copy.flags.c_contiguous
    np.testing.assert_array_equal(copy, values.T)


@pytest.mark.parametrize("model, hidden", [("linear", None), ("logistic", None), ("mlp", 16)])
def test_every_array_of_a_problem_starts_on_a_cache_line(model, hidden):
    problem = make_problem(model, Size(300, 20), batch_size=32, hidden=hidden)
    arrays = [problem.X, problem.y, problem.X_test, problem.y_test, problem.w_star, problem.batches]
    arrays += list(problem.start.values())
    assert all(is_aligned(a) and not a.flags.writeable for a in arrays)


def test_the_seed_trainers_float64_copies_start_on_a_cache_line_after_any_earlier_allocation():
    # Whatever the process allocated before (here: blocks of odd sizes, some freed), the float64 copy is aligned.
    clutter = [np.empty(n, dtype=np.uint8) for n in (24, 40, 1_000_008, 72)]
    del clutter[2]
    problem = make_problem("linear", Size(1000, 100))
    trainer = make_trainer(Case("linear", "numpy", "seed", "eager"), problem, 0.01)
    assert trainer.X.dtype == np.float64
    assert all(is_aligned(a) for a in (trainer.X, trainer.y, trainer.w0))
    np.testing.assert_array_equal(trainer.X, problem.X.astype(np.float64))
