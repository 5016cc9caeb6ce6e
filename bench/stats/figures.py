"""The figures API: saved records in; every steps/s and x NumPy figure with its 95% interval out.

The terminal's end-of-run table (bench.session.summary), the session that saves the
intervals (bench.engine.passes), the report's speedup tables (bench.report.speedup), the
agreement check (bench.report.agreement) and the run-term estimate (bench.stats.run_terms)
all take their figures from here, so each rule is written once: the pass as the unit
(pass_logs), the baseline each case is compared with (bench.stats.pairing), the ratio's
centre (bench.stats.intervals.ratio_centre), the interval (bench.stats.intervals) and the
between-run term a record carries (saved_term).

A record is a case's saved extra_info (docs/results-schema.md): it holds its round times
with their pass labels, K, its model, backend and size, and, since run terms exist, the
term each of its figures was given, so that the report rebuilds the same interval the
terminal printed.
"""

from __future__ import annotations

import math

import numpy as np

from bench.stats.intervals import Interval, RunTerm, pooled_intervals, ratio_centre
from bench.stats.pairing import BASELINE_BACKEND, baseline_identity, case_identity, pass_log_ratios, pass_step_times
from bench.stats.run_terms import RunTerms, load_terms, size_class

# The fields a record carries for each figure's run term (bench.engine.passes writes them): the constant variance,
# its degrees of freedom, and the scale and power of the part that grows with the figure's noise.
TERM_FIELDS = {
    "steps": (
        "interval_run_var_log",
        "interval_run_df",
        "interval_run_scale",
        "interval_run_power",
        "interval_quantile",
    ),
    "ratio": ("ratio_run_var_log", "ratio_run_df", "ratio_run_scale", "ratio_run_power", "ratio_quantile"),
}
_SHIPPED: list[RunTerms] = []


def shipped_terms() -> RunTerms:
    """The suite's own estimate of the run terms (bench.stats.run_terms), read once."""
    if not _SHIPPED:
        _SHIPPED.append(load_terms())
    return _SHIPPED[0]


def saved_term(info: dict, kind: str) -> RunTerm:
    """The run term a record's figure was given when it was saved; records saved before: the shipped estimate."""
    variance_field, df_field, scale_field, power_field, quantile_field = TERM_FIELDS[kind]
    variance = _finite(info.get(variance_field))
    if variance is None:
        return shipped_terms().for_figure(kind, info)
    df = _finite(info.get(df_field))
    # None: saved with a constant term (no scale, no power) and a t interval (no quantile).
    scale, power, quantile = (_finite(info.get(f)) for f in (scale_field, power_field, quantile_field))
    df = df if df is not None and df > 0 else math.inf
    return RunTerm(variance, df, "saved with the run", scale or 0.0, power or 0.0, quantile if quantile else math.nan)


def term_fields(info: dict, terms: RunTerms) -> dict:
    """The fields that give a record its run terms (both kinds) from `terms`: what saved_term reads back."""
    fields = {}
    for kind, (variance_field, df_field, scale_field, power_field, quantile_field) in TERM_FIELDS.items():
        term = terms.for_figure(kind, info)
        fields[variance_field] = term.variance
        fields[df_field] = term.df if math.isfinite(term.df) else None
        fields[scale_field], fields[power_field] = term.scale, term.power
        fields[quantile_field] = term.quantile if math.isfinite(term.quantile) else None
    fields["interval_run_terms_source"] = terms.source
    return fields


def _finite(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def step_times_by_pass(info: dict) -> dict[int, float]:
    """Median per-step time of each pass of a record ({} without raw rounds)."""
    times, labels, k = info.get("round_times_s"), info.get("round_pass"), info.get("steps_per_round")
    if not isinstance(times, (list, tuple, np.ndarray)) or not isinstance(labels, (list, tuple, np.ndarray)):
        return {}  # a record without raw rounds (a table cell holds NaN there)
    if not len(times) or not k or len(times) != len(labels):
        return {}
    return pass_step_times(times, labels, k)


def pass_logs(info: dict) -> np.ndarray:
    """The log steps/s of each pass of a record, in pass order: the samples of its interval."""
    by_pass = step_times_by_pass(info)
    return -np.log([by_pass[p] for p in sorted(by_pass)]) if by_pass else np.array([])


def steps_intervals(infos: list[dict], within_only: bool = False) -> list[Interval]:
    """The steps/s interval of each record, the run's records of one backend moderating each other.

    within_only: the passes' part alone (no run term), as the run-term estimate needs it.
    """
    samples = [pass_logs(info) for info in infos]
    centres = [float(np.median(s)) if len(s) else math.nan for s in samples]
    centres = [
        math.log(info["steps_per_s"]) if _finite(info.get("steps_per_s")) else c for info, c in zip(infos, centres)
    ]
    terms = None if within_only else [saved_term(info, "steps") for info in infos]
    return pooled_intervals(samples, centres, [info.get("backend") for info in infos], terms)


def baseline_pairs(infos: list[dict]) -> list[tuple[dict, dict]]:
    """(case, NumPy baseline) for every record of another backend whose baseline (bench.stats.pairing) the run holds."""
    baselines = {case_identity(i): i for i in infos if i.get("backend") == BASELINE_BACKEND}
    pairs = []
    for info in infos:
        base = baselines.get(baseline_identity(info))
        if base is not None:
            pairs.append((info, base))
    return pairs


def ratio_intervals(pairs: list[tuple[dict, dict]], within_only: bool = False) -> list[Interval | None]:
    """The steps/s ratio of each (case, baseline) pair of one run, pass by pass, with its interval (None: no
    common pass). The run's ratios of one backend moderate each other."""
    samples = [pass_log_ratios(step_times_by_pass(base), step_times_by_pass(case)) for case, base in pairs]
    usable = [i for i, s in enumerate(samples) if len(s)]
    found: list[Interval | None] = [None] * len(pairs)
    intervals = pooled_intervals(
        [samples[i] for i in usable],
        [ratio_centre(samples[i]) for i in usable],
        [pairs[i][0].get("backend") for i in usable],
        None if within_only else [saved_term(pairs[i][0], "ratio") for i in usable],
    )
    for i, interval in zip(usable, intervals):
        found[i] = interval
    return found


def figure_table(infos: list[dict], within_only: bool = False) -> dict[tuple, tuple]:
    """Every figure of one run with an interval, by (kind, case id): (kind, backend, size class, log figure, squared
    standard error, group, pass-to-pass variance, half-width), group being the model and size whose moments its
    figures share, the variance the noise its run term grows with and the half-width the interval's, in log."""
    table = {}
    warm = [i for i in infos if step_times_by_pass(i) and i.get("phase", "warm") != "cold"]

    def add(kind, info, interval):
        if interval is None or not math.isfinite(interval.se):
            return
        group = (info.get("model"), info.get("n_examples"), info.get("n_features"))
        se = interval.se_within if within_only else interval.se
        size = size_class(info.get("n_examples"), info.get("n_features"))
        half = math.nan if within_only else interval.half
        row = (kind, str(info.get("backend")), size, interval.centre, se**2, group, interval.noise, half)
        table[(kind, info.get("case_id"))] = row

    for info, interval in zip(warm, steps_intervals(warm, within_only)):
        add("steps", info, interval)
    pairs = baseline_pairs(warm)
    for (case, _), interval in zip(pairs, ratio_intervals(pairs, within_only)):
        add("ratio", case, interval)
    return table
