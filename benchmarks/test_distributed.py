"""Data-parallel SGD with mx.distributed: linear and logistic regression on N ranks.

Each rank holds 1/N of the examples; gradients are summed with all_sum and
every rank takes the same step. Parametrized over model x rank count
(`--dist-ranks`, N = 1 first as the scaling baseline) x size: with the default
`--sizes quick` the blog's 1,000 x 100 and 100,000 x 100, otherwise the
`--sizes` grid. See bench/distributed/ for the launcher and the rank program.
A rank that crashes or hangs fails its case with one line within
`--dist-timeout`; the other cases still run and their results are saved.
"""

from dataclasses import asdict

import pytest

from bench.backends import get
from bench.cases.sizes import Size
from bench.distributed.launcher import DistributedError
from bench.distributed.measure import DistCase, cases, run_distributed_case, sizes_for, skip_reason
from bench.distributed.pytest_plugin import dist_settings
from bench.session.config import session_config

SCENARIO = "distributed"


def pytest_generate_tests(metafunc):
    """Parametrize (dist_case, dist_size): sizes outer, then model, device and N ascending."""
    if not {"dist_case", "dist_size"} <= set(metafunc.fixturenames):
        return
    config = metafunc.config
    dist = dist_settings(config)
    session = session_config(config)
    budget = session.memory_budget_bytes
    params = []
    for size in sizes_for(session.sizes_option, session.sizes):
        for case in cases(get("mlx").devices(), dist):
            reason = skip_reason(case, size, dist, budget)
            marks = [pytest.mark.skip(reason=reason)] if reason else []
            params.append(pytest.param(asdict(case), asdict(size), id=case.case_id(size), marks=marks))
    metafunc.parametrize("dist_case,dist_size", params, indirect=True)


@pytest.fixture
def dist_case(request):
    """The data-parallel configuration under test (a bench.distributed.measure.DistCase)."""
    return DistCase(**request.param)


@pytest.fixture
def dist_size(request):
    """The problem size (a bench.cases.sizes.Size)."""
    return Size(**request.param)


# A case whose ranks fail before the timed rounds never used the fixture; its
# failure already says why, so pytest-benchmark's "not used" warning would only add noise.
pytestmark = pytest.mark.filterwarnings("ignore:Benchmark fixture was not used")


def test_distributed(benchmark, dist_case, dist_size, settings, pytestconfig):
    failure = None
    try:
        run_distributed_case(benchmark, dist_case, dist_size, settings, dist_settings(pytestconfig))
    except DistributedError as error:
        failure = f"{dist_case.case_id(dist_size)}: {error}"
    if failure:  # outside the except block: one line, without a chained traceback
        pytest.fail(failure, pytrace=False)
