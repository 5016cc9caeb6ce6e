"""The between-run term of the intervals: looked up, read, estimated from pairs of runs, and checked (z by tercile).

Pairs of synthetic runs are made with a known between-run effect TAU on every figure: the estimate
(python -m bench.report.calibration estimate) must find it, and the intervals that carry it must be
calibrated on a further pair (python -m bench.report.calibration check). Figures whose between-run
effect grows with their noise, as on the suite's own machines, must be found growing, and calibrated
in every tercile where a constant term is not.
"""

from __future__ import annotations

import json
import math
import zlib

import numpy as np
import pandas as pd
import pytest
import report_synth as synth
from scipy import stats

from bench.report import calibration
from bench.stats.figures import saved_term, shipped_terms
from bench.stats.intervals import NO_RUN_TERM, RunTerm, log_intervals, median_variance_factor
from bench.stats.run_terms import (
    SHIPPED_PATTERN,
    SHIPPED_TERMS,
    PairedFigure,
    RunTerms,
    estimate_terms,
    load_terms,
    size_class,
    tercile_miss,
    terms_from_json,
)

TAU = 0.04
PASS_SD = 0.02
MODELS = ("linear", "logistic", "mlp")
SIZES = ((1_000, 10), (1_000, 100), (10_000, 100), (10_000, 1_000), (100_000, 100))
MLX = (("autodiff", "step"), ("compiled", "step"), ("analytic", "round"))


def test_size_classes():
    assert size_class(1_000, 100) == "small" and size_class(10_000, 100) == "medium"
    assert size_class(10_000, 1_000) == "large" and size_class(None, 3) == "large"


def test_a_figure_takes_the_narrowest_term_there_is():
    terms = RunTerms(
        {"steps/mlx/small": RunTerm(0.01, 5), "steps/mlx/*": RunTerm(0.02, 9), "ratio/*/*": RunTerm(0.03, 20)}, "t"
    )
    small, large = (
        {"backend": "mlx", "n_examples": 1_000, "n_features": 10},
        {"backend": "mlx", "n_examples": 10**5, "n_features": 100},
    )
    assert terms.for_figure("steps", small).variance == 0.01
    assert terms.for_figure("steps", large).variance == 0.02
    assert terms.for_figure("ratio", small).variance == 0.03
    assert terms.for_figure("steps", {"backend": "numpy", "n_examples": 1_000, "n_features": 10}) == NO_RUN_TERM


def test_a_record_keeps_the_term_it_was_saved_with():
    info = {
        "backend": "mlx",
        "n_examples": 1_000,
        "n_features": 10,
        "interval_run_var_log": 0.002,
        "interval_run_df": 7,
    }
    assert saved_term(info, "steps") == RunTerm(0.002, 7.0, "saved with the run")  # a constant term, as once saved
    grows = {**info, "interval_run_var_log": 0.0, "interval_run_scale": 3.0, "interval_run_power": 1.5}
    assert saved_term(grows, "steps") == RunTerm(0.0, 7.0, "saved with the run", 3.0, 1.5)
    older = {"backend": "mlx", "n_examples": 1_000, "n_features": 10}  # saved before run terms: the shipped estimate
    assert saved_term(older, "steps") == RunTerm(**{**shipped_terms().for_figure("steps", older).__dict__,
                                                     "source": shipped_terms().source})  # fmt: skip


def test_the_term_grows_with_the_noise_and_is_added_to_the_passes_part_undivided():
    term = RunTerm(0.0, math.inf, "t", scale=3.0, power=1.5)
    assert term.between(0.0) == 0.0 and term.between(0.01) == pytest.approx(3.0 * 0.01**1.5)
    assert RunTerm(0.002, 9.0, "old").between(0.05) == 0.002  # a constant term, whatever the noise
    samples = [np.log([1.0, 1.1, 0.95]), np.log([1.0, 1.01, 0.99])]
    plain = log_intervals(samples, [0.0, 0.0])
    widened = log_intervals(samples, [0.0, 0.0], [term, term])
    for without, with_term in zip(plain, widened):
        # se^2 = the passes' part (median factor x noise / n) + scale x noise^power, the noise being the moderated
        # pass-to-pass variance the interval saves.
        assert without.se_within**2 == pytest.approx(median_variance_factor(3) * without.noise / 3)
        assert with_term.se**2 == pytest.approx(without.se**2 + 3.0 * with_term.noise**1.5)
        # Welch-Satterthwaite: both parts move with the noise (the term as noise^1.5), its scale is taken as known.
        within, between = without.se**2, 3.0 * with_term.noise**1.5
        assert with_term.df == pytest.approx(without.df * ((within + between) / (within + 1.5 * between)) ** 2)
    # A constant term of finite degrees of freedom: the familiar sum.
    (constant,) = log_intervals(samples[:1], [0.0], [RunTerm(0.004, 10.0)])
    within = plain[0].se ** 2
    assert constant.df == pytest.approx((within + 0.004) ** 2 / (within**2 / plain[0].df + 0.004**2 / 10.0))


def test_the_shipped_terms_say_where_they_came_from():
    terms = load_terms()
    assert "pair" in terms.source and "AMD EPYC" in terms.source
    assert "steps/*/*" in terms.terms and "ratio/*/*" in terms.terms
    assert all(math.isfinite(t.variance) and t.variance >= 0 for t in terms.terms.values())
    assert all(math.isfinite(t.scale) and t.scale >= 0 and 0 <= t.power <= 2.5 for t in terms.terms.values())
    # Estimated on machines where the noisy figures moved between runs far more than their passes said.
    assert terms.for_cell("steps", "numpy", "large").between(0.01) > terms.for_cell("steps", "numpy", "large").between(
        0.0001
    )


@pytest.mark.parametrize(
    "document",
    [
        {},
        {"source": "x"},
        {"source": "x", "terms": {"steps/*/*": {"variance": -1}}},
        {"source": "x", "terms": [1]},
        {"source": "x", "terms": {}, "cpu_models": "AMD EPYC"},
    ],
)
def test_a_file_that_is_not_run_terms_is_one_line(document):
    with pytest.raises(ValueError) as error:
        terms_from_json(document, "terms.json")
    assert "terms.json: not a file of run terms" in str(error.value) and "\n" not in str(error.value)


def test_each_machine_kind_gets_the_shipped_terms_estimated_on_its_own_runs():
    shipped = sorted(SHIPPED_TERMS.parent.glob(SHIPPED_PATTERN))
    assert SHIPPED_TERMS in shipped and len(shipped) >= 2, shipped
    default = load_terms()
    for path in shipped:
        terms = load_terms(path)
        assert terms.cpu_models, f"{path.name} names no CPU model"
        for model in terms.cpu_models:
            chosen = load_terms(cpu_model=model)
            assert chosen.source == terms.source and chosen.terms == terms.terms
            assert model in chosen.source  # the terms say which machine they were estimated on
    # A machine no shipped estimate was made on, or none named: the default.
    assert load_terms(cpu_model="Some Other CPU").terms == default.terms
    assert load_terms(cpu_model=None).terms == default.terms
    # A file given by the reader is read as it is, whatever the machine.
    assert load_terms(shipped[-1], cpu_model=default.cpu_models[0]).source == load_terms(shipped[-1]).source


def test_estimate_finds_a_planted_term_and_nothing_where_there_is_none():
    rng = np.random.default_rng(0)
    noise = PASS_SD**2
    for tau in (TAU, 0.0):
        rows = []
        for g in range(40):
            w = noise / 3
            for _ in range(4):  # four figures a group, sharing nothing but their pair of runs
                d = rng.normal(0, math.sqrt(2 * w + 2 * tau**2))
                rows.append(PairedFigure("steps", "mlx", "small", d, w, w, noise, noise, f"g{g}"))
        found = estimate_terms(rows, "test").terms["steps/mlx/small"]
        assert abs(math.sqrt(found.between(noise)) - tau) < 0.012
        assert found.df == (39 if found.between(noise) > 0 else math.inf)


def planted_growing(rng, groups: int = 120, pairs: int = 1) -> list[PairedFigure]:
    """Figures at noise levels 1-15% a pass whose run effect has variance 2 x noise^1.5 (6% at 10% a pass),
    their groups spread over `pairs` pairs of runs."""
    rows = []
    for g in range(groups):
        for sd in (0.01, 0.03, 0.06, 0.10, 0.15):
            noise = sd**2
            w = noise / 3
            tau2 = 2.0 * noise**1.5
            d = rng.normal(0, math.sqrt(2 * w + 2 * tau2))
            rows.append(PairedFigure("steps", "numpy", "large", d, w, w, noise, noise, f"g{g}", g % pairs))
    return rows


def test_the_interval_takes_the_quantile_the_estimate_found_on_held_out_pairs():
    # Normal errors with the right term: the 95% quantile of |z| on pairs held out in turn is about 1.96 ...
    found = estimate_terms(planted_growing(np.random.default_rng(7), groups=400, pairs=4), "test")
    quantile = found.terms["steps/numpy/large"].quantile
    assert 1.8 < quantile < 2.15, quantile
    # ... one pair cannot be held out from itself: no quantile, and the interval is Student's t at its df.
    assert math.isnan(estimate_terms(planted_growing(np.random.default_rng(7)), "t").terms["steps/*/*"].quantile)
    samples = [np.log([1.0, 1.1, 0.95]), np.log([1.0, 1.01, 0.99])]
    t_interval, with_quantile = (
        log_intervals(samples[:1], [0.0], [RunTerm(0.001, 30.0, "t", quantile=q)])[0] for q in (math.nan, 2.0)
    )
    assert with_quantile.half == pytest.approx(2.0 * with_quantile.se)
    assert t_interval.half == pytest.approx(stats.t.ppf(0.975, t_interval.df) * t_interval.se)
    # The record keeps the quantile its interval was given; a file refuses a quantile that is not positive.
    info = {"backend": "mlx", "n_examples": 1_000, "n_features": 10, "interval_run_var_log": 0.0}
    assert saved_term({**info, "interval_quantile": 2.1}, "steps").quantile == 2.1
    assert math.isnan(saved_term(info, "steps").quantile)
    with pytest.raises(ValueError, match="quantile"):
        terms_from_json({"source": "x", "terms": {"steps/*/*": {"variance": 0, "quantile": -1}}}, "terms.json")


def test_estimate_finds_a_term_that_grows_with_the_noise_and_calibrates_every_tercile():
    training = planted_growing(np.random.default_rng(5))
    found = estimate_terms(training, "test")
    term = found.terms["steps/numpy/large"]
    assert 1.0 <= term.power <= 2.0, term
    for sd in (0.03, 0.10):
        assert term.between(sd**2) == pytest.approx(2.0 * sd**3, rel=0.5)
    # On figures the estimate did not see: every tercile of w calibrated, where a constant term (the method of
    # moments' mean excess, d^2/2 - (w1 + w2)/2) is not.
    held_out = planted_growing(np.random.default_rng(6))
    tau2 = float(np.mean([(f.d**2 - f.w1 - f.w2) / 2 for f in training]))
    constant = RunTerms({"steps/numpy/large": RunTerm(tau2, 119.0, "t")}, "t")
    assert tercile_miss(held_out, found) < 0.05
    assert tercile_miss(held_out, constant) > 4 * tercile_miss(held_out, found)


# -- pairs of synthetic runs, through the files and the command ------------------------------------------


def synthetic_run(rng, run_effects: dict, tau_terms: float | None) -> dict:
    """A saved run of the grid's MLX cases and their NumPy baselines: each figure is its truth times its run effect
    (shared by both runs' draws of `run_effects` only through the seed) times three passes' noise."""
    benchmarks = []
    for model in MODELS:
        for n, d in SIZES:
            for backend, variant, barrier in (("numpy", "analytic", "eager"), *(("mlx", v, b) for v, b in MLX)):
                key = (model, n, d, backend, variant)
                truth = 1e-3 * (1 + zlib.crc32(repr(key).encode()) % 7)  # the same in both runs
                effect = run_effects.setdefault(key, rng.normal(0, TAU))
                medians = truth * np.exp(effect + rng.normal(0, PASS_SD, 3))
                entry = synth.benchmark(model=model, backend=backend, variant=variant, barrier=barrier, n=n, d=d,
                                        times=list(medians))  # fmt: skip
                entry = synth.in_passes(entry, list(medians))
                entry["extra_info"]["steps_per_s"] = 100 / float(np.median(medians))
                if tau_terms is not None:  # the term a session with --run-terms saves with every case
                    entry["extra_info"].update(interval_run_var_log=tau_terms, interval_run_df=40.0,
                                               ratio_run_var_log=2 * tau_terms, ratio_run_df=40.0)  # fmt: skip
                benchmarks.append(entry)
    return synth.run(benchmarks)


def write_pair(tmp_path, name, seed, tau_terms=None) -> list[str]:
    rng = np.random.default_rng(seed)
    paths = []
    for i in (1, 2):
        path = tmp_path / f"{name}{i}" / f"000{i}_run.json"
        path.parent.mkdir()
        path.write_text(json.dumps(synthetic_run(rng, {}, tau_terms)))  # each run its own effects
        paths.append(str(path))
    return paths


def test_the_estimate_and_the_check_through_the_command(tmp_path, capsys):
    pair = write_pair(tmp_path, "a", seed=1)
    out = tmp_path / "terms.json"
    assert calibration.main(["estimate", *pair, "--out", str(out)]) == 0
    terms = load_terms(out)
    assert terms.cpu_models == ("Apple M1",)  # the CPU the pair ran on, so the file can ship for that machine
    # Every figure moved by its own run effect of sd TAU: the steps/s term finds it, the ratio's (two effects) twice.
    # (Every figure's passes vary alike, so the term is read at that noise: a constant term has nothing to grow with.)
    noise = PASS_SD**2
    assert abs(math.sqrt(terms.terms["steps/mlx/*"].between(noise)) - TAU) < 0.015
    assert abs(math.sqrt(terms.terms["ratio/mlx/*"].between(2 * noise)) - math.sqrt(2) * TAU) < 0.02
    # A further pair whose records carry the term (as --run-terms saves it) is calibrated; without it, it is not.
    held_out = write_pair(tmp_path, "b", seed=2, tau_terms=TAU**2)
    assert calibration.main(["check", *held_out]) == 0
    table = capsys.readouterr().out
    overall = next(line for line in table.splitlines() if line.startswith("steps/s  all"))
    var_z = float(overall.split("var(z)")[1].split(",")[0])
    assert 0.7 < var_z < 1.4, overall
    frame = calibration.z_frame([tuple(calibration.run_records(p)[0] for p in held_out)])
    assert set(frame["tercile"]) == {"low se", "mid se", "high se"}


def test_the_check_refuses_an_odd_number_of_runs_and_unreadable_files(tmp_path, capsys):
    pair = write_pair(tmp_path, "a", seed=3)
    assert calibration.main(["check", pair[0]]) == 2
    assert "pairs" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("{}")
    assert calibration.main(["check", pair[0], str(tmp_path / "bad.json")]) == 2


def test_the_share_beyond_196_has_a_cluster_bootstrap_interval():
    rng = np.random.default_rng(4)
    z = pd.Series(rng.standard_normal(600))
    groups = pd.Series(np.repeat(np.arange(60), 10))
    low, high = calibration.beyond_share_interval(z, groups)
    share = float((z.abs() > 1.96).mean())
    assert low < share < high and high - low < 0.1


def test_the_cross_check_checks_each_pair_with_the_terms_of_the_others(tmp_path, capsys):
    runs = [p for name, seed in (("a", 11), ("b", 12), ("c", 13)) for p in write_pair(tmp_path, name, seed)]
    assert calibration.main(["cross-check", *runs]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in out[:3]] == ["pair 1 left out", "pair 2 left out", "pair 3 left out"]
    overall = next(line for line in out if line.startswith("steps/s  all"))
    # The records were saved without terms; each pair left out gets the ones its two neighbours imply (about TAU),
    # so the held-out pairs together are calibrated.
    var_z = float(overall.split("var(z)")[1].split(",")[0])
    assert 0.7 < var_z < 1.4, overall
    assert any(line.startswith("x NumPy  high se") for line in out)
    assert calibration.main(["cross-check", *runs[:4]]) == 2  # two pairs: nothing left to estimate from
    assert "at least three pairs" in capsys.readouterr().err
