"""python -m bench.report.agreement: how far two runs of one grid differ."""

import json

import report_synth as synth

from bench.report import agreement


def save(path, times_by_case):
    benchmarks = [
        synth.benchmark(backend=backend, variant=variant, barrier=barrier, times=times)
        for (backend, variant, barrier), times in times_by_case.items()
    ]
    path.write_text(json.dumps(synth.run(benchmarks)))
    return str(path)


def save_with_intervals(path, times_by_case, half=1.02, se_log=0.01, probe_s=None):
    """A saved run whose every figure has the 95% interval [x / half, x * half] and standard error se_log (in log),
    as bench.stats.intervals saves them; with probe_s, the machine's probe median of the run."""
    save(path, times_by_case)
    data = json.loads(path.read_text())
    for bench in data["benchmarks"]:
        info = bench["extra_info"]
        rate = info.get("steps_per_s") or info["steps_per_round"] / bench["stats"]["median"]
        info.update(steps_per_s_se_log=se_log, steps_per_s_ci_low=rate / half, steps_per_s_ci_high=rate * half)
    if probe_s is not None:
        data["machine_info"]["machine_steadiness"] = {"median_s": probe_s, "spread": 0.2}
    path.write_text(json.dumps(data))
    return str(path)


def test_agreement_of_two_runs(tmp_path, capsys):
    cases = [("numpy", "analytic", "eager"), ("mlx", "autodiff", "step"), ("mlx", "compiled", "step")]
    first = save(tmp_path / "a.json", {c: [0.02] * 5 for c in cases})
    # the second run: one case 10% slower (its steps/s change by 1/1.1 - 1), one 2% faster
    second = save(tmp_path / "b.json", dict(zip(cases, ([0.02] * 5, [0.022] * 5, [0.02 / 1.02] * 5))))
    assert agreement.main([first, second]) == 0
    out = capsys.readouterr().out
    assert "3 cases in both runs" in out
    assert "median 2.0%" in out and "max 9.1%" in out
    lines = out.splitlines()
    first = next(i for i, line in enumerate(lines) if "cases in both runs" in line)
    assert lines[first + 1].strip().startswith("linear-mlx-autodiff-step-cpu-n1000-d10")
    assert "steps/s: no intervals saved in both runs" in out  # these synthetic runs predate intervals
    assert "stable in both runs: 3 cases, median 2.0%" in out


def test_agreement_refuses_unusable_input(tmp_path, capsys):
    (tmp_path / "bad.json").write_text("{}")
    good = save(tmp_path / "a.json", {("numpy", "analytic", "eager"): [0.02] * 5})
    assert agreement.main([str(tmp_path / "bad.json"), good]) == 2
    assert "no usable results" in capsys.readouterr().err


def test_agreement_shows_how_far_the_machine_itself_moved(tmp_path, capsys):
    paths = []
    for name, median in (("a", 0.0015), ("b", 0.00165)):
        path = tmp_path / f"{name}.json"
        save(path, {("numpy", "analytic", "eager"): [0.02] * 5})
        data = json.loads(path.read_text())
        data["machine_info"]["machine_steadiness"] = {"median_s": median, "spread": 0.2}
        path.write_text(json.dumps(data))
        paths.append(str(path))
    assert agreement.main(paths) == 0
    assert "median 1.50 -> 1.65 ms (+10.0%), moving by 20% / 20% within each run" in capsys.readouterr().out


def test_consistency_share_and_half_width_of_the_intervals(tmp_path, capsys):
    """Two runs with saved intervals: a case whose figures differ by more than its intervals allow is inconsistent."""
    cases = [("numpy", "analytic", "eager"), ("mlx", "autodiff", "step"), ("mlx", "compiled", "step")]
    paths = [
        save_with_intervals(tmp_path / f"{name}.json", {c: [t] * 5 for c, t in zip(cases, times)})
        for name, times in (("a", (0.02, 0.02, 0.02)), ("b", (0.02, 0.0201, 0.026)))
    ]
    assert agreement.main(paths) == 0
    out = capsys.readouterr().out
    # +0.5% is within 1.96 * sqrt(2) * 1% of the first run; +30% is not.
    assert "steps/s: 66.7% of 3 cases consistent within their 95% intervals" in out
    assert "66.7% by 1.96 * sqrt(se1^2 + se2^2)" in out
    assert "median 95% half-width 2.0%" in out


def test_consistency_within_the_intervals_shown_and_by_the_normal_rule(tmp_path, capsys):
    """A t interval with few degrees of freedom is wider than 1.96 se: a 4% gap is within two +-4% intervals
    (half-widths combined: 5.5%) but outside 1.96 * sqrt(2) * 1% (2.8%)."""
    case = ("mlx", "autodiff", "step")
    paths = [
        save_with_intervals(tmp_path / f"{name}.json", {case: [time] * 5}, half=1.04)  # t_df near 4: 3 passes
        for name, time in (("a", 0.02), ("b", 0.02 / 1.04))
    ]
    assert agreement.main(paths) == 0
    out = capsys.readouterr().out
    assert "steps/s: 100.0% of 1 cases consistent within their 95% intervals" in out
    assert "0.0% by 1.96 * sqrt(se1^2 + se2^2)" in out
    assert "median 95% half-width 4.0%" in out


def test_ratios_outside_their_intervals_are_traced_to_the_numpy_baseline_that_moved(tmp_path, capsys):
    """NumPy 25% faster in the second run, MLX unchanged: both MLX ratios to it fall outside, through one baseline."""
    paths = []
    for name, numpy_time in (("a", 0.02), ("b", 0.016)):
        jitter = (1.0, 1.01, 0.99)
        cases = {
            ("numpy", "analytic", "eager"): [numpy_time * j for j in jitter],
            ("mlx", "autodiff", "step"): [0.04 * j for j in (1.0, 1.012, 0.991)],
            ("mlx", "compiled", "step"): [0.03 * j for j in (1.0, 1.009, 0.988)],
        }
        benchmarks = [
            synth.in_passes(synth.benchmark(backend=b, variant=v, barrier=r, times=[1] * 5), medians)
            for (b, v, r), medians in cases.items()
        ]
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(synth.run(benchmarks)))
        paths.append(str(path))
    assert agreement.main(paths) == 0
    out = capsys.readouterr().out
    assert "x NumPy: 0.0% of 2 cases consistent" in out
    assert (
        "outside: 2 ratio(s) to linear-numpy-analytic-eager-cpu-n1000-d10: the baseline's steps/s moved +25.0%, "
        "the cases' own +0.0% to +0.0%"
    ) in out


def runs_with_probe(tmp_path, second_slower: float, probe_change: float) -> list[str]:
    """Two runs of three cases with +-2% intervals: the second's cases `second_slower` times slower, its probe
    median `1 + probe_change` times the first's."""
    cases = [("numpy", "analytic", "eager"), ("mlx", "autodiff", "step"), ("mlx", "compiled", "step")]
    return [
        save_with_intervals(tmp_path / f"{name}.json", {c: [0.02 * factor] * 5 for c in cases}, probe_s=probe)
        for name, factor, probe in (("a", 1.0, 1e-3), ("b", second_slower, 1e-3 * (1 + probe_change)))
    ]


def test_a_machine_that_changed_between_the_runs_is_named_and_divided_out(tmp_path, capsys):
    """The whole machine 13% slower in the second run (the probe says so): every figure falls outside its
    interval, and every one is consistent once the second run is scaled back by the probe's change."""
    assert agreement.main(runs_with_probe(tmp_path, 1.13, 0.13)) == 0
    out = capsys.readouterr().out
    assert "steps/s: 0.0% of 3 cases consistent" in out
    assert "the machine itself changed between the runs: its probe's median moved +13.0% (1.00 -> 1.13 ms)" in out
    assert "scaled by the probe's change: 100.0% of 3 cases consistent within their 95% intervals" in out


def test_a_machine_that_stayed_put_gets_no_machine_change_line(tmp_path, capsys):
    assert agreement.main(runs_with_probe(tmp_path, 1.0, 0.02)) == 0
    out = capsys.readouterr().out
    assert "steps/s: 100.0% of 3 cases consistent" in out
    assert "changed between the runs" not in out and "median 1.00 -> 1.02 ms (+2.0%)" in out
