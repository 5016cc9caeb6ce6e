"""The size grids and the --sizes parser."""

import pytest

from bench.cases.sizes import BLOG_SIZE, FULL, QUICK, Size, SizeError, estimated_case_bytes, parse_sizes


def test_named_grids():
    assert parse_sizes("quick") == QUICK
    assert parse_sizes(" FULL ") == FULL
    assert BLOG_SIZE in QUICK
    assert set(QUICK) < set(FULL)


def test_quick_spans_small_to_large():
    elems = [s.n_examples * s.n_features for s in QUICK]
    assert min(elems) <= 10_000 and max(elems) >= 10_000_000


def test_explicit_list_keeps_order_drops_repeats():
    assert parse_sizes("5000x50, 20_000X200,5000x50") == (Size(5000, 50), Size(20_000, 200))


@pytest.mark.parametrize("bad", ["", "5000", "5000x", "x50", "5000x50,", "abcxdef", "1x5", "5000x0", "-5x3"])
def test_malformed_values_raise_one_line(bad):
    with pytest.raises(SizeError) as info:
        parse_sizes(bad)
    assert "\n" not in str(info.value) and str(info.value).startswith("--sizes")


def test_case_id():
    assert Size(1000, 100).id == "n1000-d100"


def test_memory_estimate_grows_with_size():
    assert estimated_case_bytes(Size(1000, 100)) < estimated_case_bytes(Size(100_000, 1000))
    assert estimated_case_bytes(Size(1_000_000, 1000)) > 4 * 1_000_000 * 1000
