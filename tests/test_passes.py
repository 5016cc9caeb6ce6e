"""Passes: a case's figure from its passes, the stability and pairing rules, the session's schedule, CPU pinning."""

import os
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from bench.engine import affinity
from bench.engine.pass_costs import PassCosts
from bench.engine.passes import TIMED_PHASES, Measurement, Schedule
from bench.engine.timing import time_rounds
from bench.results.extra_info import SCHEMA_VERSION
from bench.stats.pairing import baseline_of, compared_with, faster_side, pass_ratio, remeasure_groups
from bench.stats.stability import pass_figures, pass_figures_many


def rounds(*pass_medians, per_pass=5, jitter=0.001):
    """Round times of passes with the given medians, and their pass labels."""
    times = [m * (1 + jitter * (r - per_pass // 2)) for m in pass_medians for r in range(per_pass)]
    labels = [p + 1 for p in range(len(pass_medians)) for _ in range(per_pass)]
    return times, labels


def test_one_disturbed_pass_is_outvoted():
    figures = pass_figures(*rounds(1.0, 1.4, 1.01))
    assert figures.median == pytest.approx(1.01)
    assert figures.pass_spread == pytest.approx(0.4 / 1.01)
    assert figures.disagree and not figures.unstable


def test_passes_that_all_differ_are_unstable():
    assert pass_figures(*rounds(1.0, 1.2, 1.4)).unstable
    assert pass_figures(*rounds(1.0, 1.2)).unstable  # two passes 20% apart: neither is within 5% of the median
    assert not pass_figures(*rounds(1.0, 1.03)).unstable


def test_noisy_rounds_or_too_few_rounds_are_unstable():
    assert pass_figures(*rounds(1.0, 1.0, 1.0, jitter=0.1)).unstable
    assert pass_figures([1.0, 1.0, 1.0]).unstable  # three rounds in all
    assert not pass_figures([1.0] * 5).unstable  # an old one-pass result


def test_many_cases_at_once_match_one_at_a_time():
    rng = np.random.default_rng(3)
    times = rng.uniform(0.9, 1.3, size=(7, 15))
    labels = np.repeat([1, 2, 3], 5)
    many = pass_figures_many(times, labels)
    for row in range(7):
        one = pass_figures(times[row], labels)
        assert many["median"][row] == pytest.approx(one.median)
        assert many["pass_spread"][row] == pytest.approx(one.pass_spread)
        assert many["agreeing_share"][row] == pytest.approx(one.agreeing_share)


def test_pass_ratio_is_taken_within_passes():
    numpy_steps = {1: 1.0, 2: 1.4, 3: 1.0}  # a burst in pass 2 hit both sides
    mlx_steps = {1: 2.0, 2: 2.8, 3: 2.0}
    ratio = pass_ratio(numpy_steps, mlx_steps)
    assert ratio.ratio == pytest.approx(0.5) and ratio.passes == 3
    assert ratio.low == pytest.approx(0.5) and ratio.high == pytest.approx(0.5)
    assert faster_side(ratio.low, ratio.high, "mlx") == "numpy"
    assert pass_ratio({1: 1.0}, {2: 1.0}) is None
    single = pass_ratio({1: 1.0}, {1: 2.0})
    assert single.ratio == 0.5 and np.isnan(single.low)


def test_interval_spans_one_when_passes_disagree_on_the_side():
    ratio = pass_ratio({1: 1.0, 2: 1.0, 3: 1.0}, {1: 0.9, 2: 1.1, 3: 1.0})
    assert ratio.low < 1 < ratio.high
    assert faster_side(ratio.low, ratio.high, "mlx") == "neither"


def test_one_pairing_rule():
    assert baseline_of("grid", "step") == ("analytic", "float32", "eager")
    assert baseline_of("grid", "sync") == ("analytic", "float32", "sync")
    assert baseline_of("blog", "round") == ("seed", "float64", "eager")


def test_compared_cases_are_found_both_ways():
    size = {"model": "linear", "n_examples": 1000, "n_features": 10, "batch_size": 1000}
    infos = [
        dict(size, backend="numpy", variant="analytic", dtype="float32", barrier="eager"),  # 0: baseline of 2
        dict(size, backend="numpy", variant="analytic", dtype="float32", barrier="sync"),  # 1: baseline of 3
        dict(size, backend="mlx", variant="compiled", dtype="float32", barrier="step"),
        dict(size, backend="mlx", variant="compiled", dtype="float32", barrier="sync"),
        dict(size, backend="numpy", variant="seed", dtype="float64", barrier="eager"),  # 4: no one's baseline here
        dict(size, backend="mlx", variant="compiled", dtype="float32", barrier="step", n_features=20),  # 5: no baseline
    ]
    assert compared_with(infos, {0}) == {0, 2}
    assert compared_with(infos, {3}) == {1, 3}
    assert compared_with(infos, {4, 5}) == {4, 5}
    assert compared_with(infos, set()) == set()


class FakeStats:
    """The part of pytest-benchmark's Metadata the schedule uses: per-step times (duration / iterations)."""

    def __init__(self, iterations):
        self.iterations, self.data = iterations, []

    def update(self, duration):
        self.data.append(duration / self.iterations)


class FakeBenchmark:
    def __init__(self):
        self.extra_info, self.has_error, self._mode, self.made = {}, False, None, []

    def _make_stats(self, iterations):
        self.made.append(FakeStats(iterations))
        return self.made[-1]


def measurement(case_id, pass_times, k=10, **extra):
    """A measurement whose later passes return the next of `pass_times` (a list of lists, or exceptions)."""
    later = iter(pass_times[1:])

    def time_pass():
        result = next(later)
        if isinstance(result, Exception):
            raise result
        return result

    info = {"batch_size": 8, "flops_per_step": 100, "bytes_per_step": 40}
    bench = FakeBenchmark()
    bench.extra_info.update(info)
    m = Measurement(case_id, bench, steps_per_round=k, rounds_per_pass=len(pass_times[0]), time_pass=time_pass, **extra)
    m.start(pass_times[0])
    return m


def test_schedule_times_later_passes_in_order_and_writes_per_step_stats():
    schedule = Schedule(passes=3)
    a = measurement("a", [[0.02] * 5, [0.021] * 5, [0.02] * 5])
    b = measurement("b", [[0.04] * 5, [0.04] * 5, [0.041] * 5])
    schedule.add(a)
    schedule.add(b)
    schedule.run_later_passes()
    schedule.finalize()
    info = a.benchmark.extra_info
    assert info["schema_version"] == SCHEMA_VERSION
    assert info["round_pass"] == [1] * 5 + [2] * 5 + [3] * 5
    assert info["steps_per_s"] == pytest.approx(10 / 0.02)
    assert info["samples_per_s"] == pytest.approx(8 * 10 / 0.02)
    assert a.benchmark._mode is not None  # the fixture counts as used
    assert a.benchmark.made[0].data[0] == pytest.approx(0.002)  # pytest-benchmark holds per-step times
    assert b.benchmark.extra_info["passes"] == 3 and not info["remeasured"]


def test_a_pass_s_cost_is_its_wall_time_less_what_it_timed_and_a_worker_s_start_is_shared_by_its_cases():
    now = [0.0]
    schedule = SimpleNamespace(phase_s={})
    costs = PassCosts(schedule, TIMED_PHASES, clock=lambda: now[0])
    group = ("grid", "numpy", "linear", "1000x10")
    first, second, failed = (
        SimpleNamespace(job=SimpleNamespace(group=group), failure=None, overhead_s=[]) for _ in "abc"
    )
    alone = SimpleNamespace(job=None, failure=None, overhead_s=[])  # a data-parallel case: no worker to share
    with costs.unit([first]):  # the group's worker starts here: 0.10 s, of which 0.04 s of rounds
        now[0] += 0.10
        schedule.phase_s["rounds"] = 0.04
    with costs.unit([second, failed]):  # an interleaved pair: 0.05 s outside its 0.03 s of rounds
        now[0] += 0.08
        schedule.phase_s["rounds"] += 0.03
        failed.failure = "pass 2: broken"
    with costs.unit([alone]):
        now[0] += 0.05
        schedule.phase_s["blog runs"] = 0.045
    costs.settle()
    # The group paid 0.06 + 0.05 s for three cases: each of its cases that was timed is given the mean.
    assert first.overhead_s == pytest.approx([(0.06 + 0.025 + 0.025) / 3]) and second.overhead_s == first.overhead_s
    assert failed.overhead_s == [] and alone.overhead_s == pytest.approx([0.005])


def test_a_check_failing_in_a_later_pass_drops_the_case():
    schedule = Schedule(passes=3)
    bad = measurement("bad", [[0.02] * 5, AssertionError("barrier missing")])
    schedule.add(bad)
    schedule.run_later_passes()
    schedule.finalize()
    assert bad.benchmark.has_error  # pytest-benchmark does not save it
    assert schedule.failures() == ["bad: pass 2: barrier missing"]
    assert "steps_per_s" not in bad.benchmark.extra_info


def test_disagreeing_cases_are_remeasured_once_within_the_budget():
    schedule = Schedule(passes=3)
    flaky = measurement("flaky", [[0.02] * 5, [0.03] * 5, [0.04] * 5, [0.02] * 5])
    schedule.add(flaky)
    schedule.started -= 100  # as if the session had been timing for 100 s: re-measuring fits
    schedule.run_later_passes()
    schedule.finalize()
    assert flaky.remeasured and flaky.benchmark.extra_info["passes"] == 4
    assert "1 re-measured once at the end" in schedule.notes[0]


def test_a_remeasured_case_takes_the_cases_compared_with_it_along():
    """A ratio is taken pass by pass: the NumPy baseline's extra pass is only of use with its partners'."""
    shape = {"model": "linear", "n_examples": 1000, "n_features": 10, "batch_size": 1000, "dtype": "float32"}
    numpy = measurement("numpy", [[0.02] * 5, [0.03] * 5, [0.02] * 5, [0.02] * 5])  # passes 50% apart
    mlx = measurement("mlx", [[0.04] * 5, [0.041] * 5, [0.04] * 5, [0.04] * 5])
    other_size = measurement("mlx-d20", [[0.05] * 5, [0.05] * 5, [0.05] * 5, [0.05] * 5])
    numpy.benchmark.extra_info.update(shape, backend="numpy", variant="analytic", barrier="eager")
    mlx.benchmark.extra_info.update(shape, backend="mlx", variant="autodiff", barrier="step")
    other_size.benchmark.extra_info.update(shape, n_features=20, backend="mlx", variant="autodiff", barrier="step")
    schedule = Schedule(passes=3)
    for m in (numpy, mlx, other_size):
        schedule.add(m)
    schedule.started -= 100  # as if the session had been timing for 100 s: re-measuring fits
    schedule.run_later_passes()
    assert numpy.remeasured and mlx.remeasured and not other_size.remeasured
    assert mlx.pass_step_times().keys() == numpy.pass_step_times().keys() == {1, 2, 3, 4}
    assert (
        "1 case(s) whose passes disagreed" in schedule.notes[0] and "1 case(s) compared with them" in schedule.notes[0]
    )
    assert "2 re-measured once at the end" in schedule.notes[0]


def test_remeasure_groups_join_cases_that_share_a_comparison():
    size = {"model": "linear", "n_examples": 1000, "n_features": 10, "batch_size": 1000, "dtype": "float32"}
    infos = [
        dict(size, backend="numpy", variant="analytic", barrier="eager"),
        dict(size, backend="mlx", variant="autodiff", barrier="step"),
        dict(size, backend="mlx", variant="compiled", barrier="step"),
        dict(size, backend="mlx", variant="compiled", barrier="step", n_features=20),  # no baseline in this run
    ]
    assert remeasure_groups(infos, [1, 2]) == [[0, 1, 2]]  # both ratios to case 0: one group
    assert remeasure_groups(infos, [3, 1]) == [[0, 1], [3]]  # in the order of pass 1
    assert remeasure_groups(infos, [0]) == [[0, 1, 2]]


def test_a_remeasure_group_that_does_not_fit_the_budget_is_skipped_whole():
    """The session timed for 10 s: 5% leaves 0.5 s, too little for a NumPy baseline and its MLX case together
    (0.6 s of rounds), though the baseline alone (0.12 s) would fit. Neither is re-measured."""
    shape = {"model": "linear", "n_examples": 1000, "n_features": 10, "batch_size": 1000, "dtype": "float32"}
    numpy = measurement("numpy", [[0.02] * 5, [0.03] * 5, [0.02] * 5, [0.02] * 5])
    mlx = measurement("mlx", [[0.08] * 5, [0.08] * 5, [0.08] * 5, [0.08] * 5])
    numpy.benchmark.extra_info.update(shape, backend="numpy", variant="analytic", barrier="eager")
    mlx.benchmark.extra_info.update(shape, backend="mlx", variant="autodiff", barrier="step")
    schedule = Schedule(passes=3)
    schedule.add(numpy)
    schedule.add(mlx)
    schedule.started -= 10
    schedule.run_later_passes()
    assert not numpy.remeasured and not mlx.remeasured
    assert "2 left as they were" in schedule.notes[0]


def test_remeasuring_stops_at_its_time_budget():
    schedule = Schedule(passes=2)
    cases = []
    for name in "abc":

        def slow_pass(name=name):
            time.sleep(0.02)
            return [0.05] * 5

        m = measurement(name, [[0.02] * 5, [0.04] * 5, None])
        m.time_pass = slow_pass
        schedule.add(m)
        cases.append(m)
    schedule.run_later_passes()  # the session so far took ~0.06 s: 10% of it is too little for a second re-measure
    assert sum(m.remeasured for m in cases) < 3
    assert "left as they were" in schedule.notes[0]


def test_time_rounds_runs_setup_outside_the_timer():
    times = time_rounds(lambda: None, 3, before_round=lambda: time.sleep(0.01))
    assert len(times) == 3 and max(times) < 0.01


@pytest.mark.skipif(not affinity.supported(), reason="needs Linux CPU affinity")
def test_pinning_moves_every_thread_and_restores():
    before = os.sched_getaffinity(0)
    target = (affinity.usable_cpus()[-1],)
    seen = {}
    ready, done = threading.Event(), threading.Event()

    def worker():  # a thread started before pinning, like MLX's stream thread
        ready.set()
        done.wait(5)
        seen["worker"] = os.sched_getaffinity(0)

    thread = threading.Thread(target=worker)
    thread.start()
    ready.wait(5)
    with affinity.pinned(target):
        seen["main"] = os.sched_getaffinity(0)
        done.set()
        thread.join(5)
    assert seen["main"] == set(target) and seen["worker"] == set(target)
    assert os.sched_getaffinity(0) == before


def test_cpu_affinity_choices():
    assert affinity.parse_cpus("auto") == "auto" and affinity.parse_cpus(" None ") == "none"
    assert affinity.parse_cpus(str(affinity.usable_cpus()[0])) == (affinity.usable_cpus()[0],)
    with pytest.raises(ValueError, match="not usable"):
        affinity.parse_cpus("999")
    with pytest.raises(ValueError, match="CPU list"):
        affinity.parse_cpus("fast")
    assert affinity.serial_cpus("none") is None
    if affinity.supported():
        assert affinity.serial_cpus("auto") == (affinity.usable_cpus()[-1],)


@pytest.mark.skipif(not affinity.supported(), reason="needs Linux CPU affinity")
def test_pinning_comparison_runs_both_ways():
    from bench.cases.case import Case
    from bench.cases.sizes import Size
    from bench.engine.pinning import compare

    figures = compare(
        Case("linear", "numpy", "analytic", "eager"), Size(200, 5), affinity.serial_cpus("auto"), pairs=2, rounds=2
    )
    assert len(figures["pinned"]) == len(figures["free"]) == 2
    assert all(f > 0 for f in figures["pinned"] + figures["free"])


def test_machine_steadiness_summarises_the_probes():
    from bench.engine.steadiness import describe, probe_seconds, summary

    assert summary([]) is None
    steady = summary([0.001] * 9 + [0.002])
    assert steady["median_s"] == pytest.approx(0.001) and steady["probes"] == 10
    assert steady["spread"] == pytest.approx((steady["p90_s"] - steady["p10_s"]) / 0.001)
    assert "moved by" in describe(steady)
    assert 0 < probe_seconds() < 1
