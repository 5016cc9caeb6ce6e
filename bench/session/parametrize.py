"""pytest plugin: the size grid x every backend's cases -> parametrized benchmarks, and their fixtures.

A benchmark module says which cases it runs (SCENARIO: grid, blog or cold)
for which models (MODEL or MODELS); the blog's configurations run at the
blog's size only. Sizes are outer, cases inner (bench.cases.grid orders them so that
compared cases sit side by side). A case that cannot run here is skipped with
a one-line reason: its library is missing, its device is absent, or its
arrays would not fit the memory budget.
"""

from __future__ import annotations

from dataclasses import asdict

import pytest

from bench.cases.case import Case
from bench.cases.grid import cases_for, skip_reason
from bench.cases.sizes import BLOG_SIZE, Size, estimated_case_bytes
from bench.session.config import session_config


def memory_reason(size: Size, hidden: int, budget: int) -> str | None:
    """Why a case's arrays would not fit the memory budget, or None."""
    need = estimated_case_bytes(size, hidden)
    if need > budget:
        return f"{size.id} needs about {need / 2**30:.1f} GiB, over the memory budget of {budget / 2**30:.1f} GiB"
    return None


def pytest_generate_tests(metafunc):
    """Parametrize each benchmark's (case, size) over the grid: sizes outer, cases inner."""
    if not {"case", "size"} <= set(metafunc.fixturenames):
        return
    session = session_config(metafunc.config)
    scenario = getattr(metafunc.module, "SCENARIO", "grid")
    models = getattr(metafunc.module, "MODELS", None) or (metafunc.module.MODEL,)
    params = []
    for size in (BLOG_SIZE,) if scenario == "blog" else session.sizes:
        for case in (c for model in models for c in cases_for(model, scenario, size, session.grid)):
            reason = skip_reason(case) or memory_reason(size, case.hidden or 0, session.memory_budget_bytes)
            marks = [pytest.mark.skip(reason=reason)] if reason else []
            # Plain dicts, so the saved JSON's `params` stay readable; fixtures rebuild the objects.
            params.append(pytest.param(asdict(case), asdict(size), id=case.case_id(size), marks=marks))
    metafunc.parametrize("case,size", params, indirect=True)


@pytest.fixture
def case(request):
    """The implementation under test (a bench.cases.case.Case)."""
    return Case(**request.param)


@pytest.fixture
def size(request):
    """The problem size (a bench.cases.sizes.Size)."""
    return Size(**request.param)


@pytest.fixture(scope="session")
def settings(pytestconfig):
    """Measurement settings from the command line (bench.session.harness.Settings)."""
    return session_config(pytestconfig).settings
