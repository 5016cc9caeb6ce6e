"""Whether the intervals say what they claim, from pairs of back-to-back runs; and the run terms they need.

Two runs of one command on one machine, nothing changed between them: for each figure both
hold (steps/s and x NumPy), z = log(x2 / x1) / sqrt(se1^2 + se2^2), se each run's standard
error of the log figure (bench.stats.figures, run term included). Where the intervals are
calibrated, z is about standard normal: its variance near 1, about 5% of |z| beyond 1.96 and
1% beyond 2.58, for every backend and in every tercile of the standard errors (an interval
that is right on average but overconfident where it is narrow is not calibrated); and about
5% of figures lie further apart than their two intervals allow, |log(x2/x1)| > sqrt(h1^2 + h2^2)
with h each interval's half-width (the intervals themselves, their quantile included).

Figures of one model and size share their moments and their NumPy baseline, so they are not
independent: the interval on the share beyond 1.96 is a cluster bootstrap over those groups.

    python -m bench.report.calibration check A.json B.json [C.json D.json ...]
    python -m bench.report.calibration estimate A.json B.json [C.json D.json ...] --out FILE
    python -m bench.report.calibration cross-check A.json B.json C.json D.json E.json F.json [...]
    python -m bench.report.calibration probe A.json B.json C.json D.json [...]

`check` prints the table; `estimate` fits the run terms (bench.stats.run_terms) from the pairs,
with three pairs or more the half-width's quantile too, and writes them where `pytest
--benchmark-only --run-terms FILE` reads them. Check intervals
on pairs the terms were not estimated from: `cross-check` does that for every pair in turn,
estimating the terms from the other pairs and checking the one left out with them, then prints
each pair's line and the table of all the held-out pairs together. `probe` measures the machine's
probe as a covariate of the figures (bench.stats.probe_covariate): how much of the pass-to-pass
variance it explains within a run, and how far adjusting each figure by it (slopes from the other
pairs) brings the two runs of a pair together. Exit status 0, or 2 when the files cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from bench.console.entry import run
from bench.report.load import read_results, warn_stderr
from bench.report.outputs import write_atomic
from bench.stats.figures import figure_table, term_fields
from bench.stats.probe_covariate import describe as describe_probe
from bench.stats.probe_covariate import probed_cases
from bench.stats.run_terms import PairedFigure, RunTerms, describe_terms, estimate_terms

BOOTSTRAP_DRAWS = 2_000
Z95, Z99 = 1.959964, 2.575829


def run_records(path: str) -> tuple[list[dict], str]:
    """The saved cases of one run file as records (the report's loader: foreign files are refused), and its CPU."""
    loaded = read_results([path], warn_stderr)
    if loaded.frame.empty:
        raise ValueError(f"{path}: no usable results")
    frame = loaded.frame
    cpu = str(frame["cpu_model"].iloc[0]) if "cpu_model" in frame else "?"
    return frame.to_dict("records"), cpu


def pair_rows(first: list[dict], second: list[dict], within_only: bool) -> pd.DataFrame:
    """One row per figure in both runs: kind, backend, size class, group, d = log(x2/x1), each run's squared
    standard error (the passes' part alone with within_only, the whole interval's otherwise) and each run's
    pass-to-pass variance (the noise its run term grows with)."""
    a, b = figure_table(first, within_only), figure_table(second, within_only)
    rows = []
    for key, (kind, backend, size, log_a, var_a, group, noise_a, half_a) in a.items():
        if key in b:
            rows.append(
                {"kind": kind, "backend": backend, "size": size, "group": str(group), "case_id": key[1],
                 "d": b[key][3] - log_a, "var_a": var_a, "var_b": b[key][4], "noise_a": noise_a,
                 "noise_b": b[key][6], "half_a": half_a, "half_b": b[key][7]}
            )  # fmt: skip
    return pd.DataFrame(rows)


def z_frame(pairs: list[tuple[list[dict], list[dict]]]) -> pd.DataFrame:
    """z of every figure in both runs of each pair, with its standard-error tercile within its kind."""
    frames = [pair_rows(a, b, within_only=False).assign(pair=i) for i, (a, b) in enumerate(pairs)]
    frame = pd.concat([f for f in frames if not f.empty], ignore_index=True) if frames else pd.DataFrame()
    if frame.empty:
        return frame
    frame["se"] = np.sqrt(frame["var_a"] + frame["var_b"])
    frame = frame[frame["se"] > 0].copy()
    frame["z"] = frame["d"] / frame["se"]
    frame["group"] = frame["pair"].astype(str) + ":" + frame["group"]
    return with_terciles(frame)


def with_terciles(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with each figure's standard-error tercile within its kind (low, mid, high se)."""
    frame["tercile"] = frame.groupby("kind")["se"].transform(
        lambda se: pd.qcut(se.rank(method="first"), 3, labels=["low se", "mid se", "high se"])
    )
    return frame


def beyond_share_interval(z: pd.Series, groups: pd.Series, seed: int = 0) -> tuple[float, float]:
    """The 95% cluster-bootstrap interval of the share of |z| beyond 1.96, resampling whole groups."""
    beyond = (z.abs() > Z95).to_numpy(dtype=float)
    labels, codes = np.unique(groups.to_numpy(), return_inverse=True)
    sums, counts = np.bincount(codes, beyond, len(labels)), np.bincount(codes, minlength=len(labels))
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(labels), size=(BOOTSTRAP_DRAWS, len(labels)))
    shares = sums[draws].sum(axis=1) / np.maximum(counts[draws].sum(axis=1), 1)
    low, high = np.percentile(shares, [2.5, 97.5])
    return float(low), float(high)


def calibration_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per kind, overall, per backend and per standard-error tercile: figures, var(z), shares beyond 1.96 (with its
    cluster-bootstrap interval) and 2.58, the share of figures whose two runs lie further apart than their two
    intervals allow (|d| > sqrt(h1^2 + h2^2), h each interval's half-width: about 5% where the intervals hold 95%),
    and the median 95% half-width of the intervals themselves."""
    rows = []
    for kind, part in frame.groupby("kind", sort=False):
        slices = [("all", part)]
        slices += [(f"backend {b}", p) for b, p in part.groupby("backend")]
        slices += [(str(t), p) for t, p in part.groupby("tercile", observed=True)]
        for label, rows_of in slices:
            low, high = beyond_share_interval(rows_of["z"], rows_of["group"])
            halves = np.concatenate([rows_of["half_a"], rows_of["half_b"]])
            outside = rows_of["d"].abs() > np.sqrt(rows_of["half_a"] ** 2 + rows_of["half_b"] ** 2)
            rows.append(
                {"figure": "steps/s" if kind == "steps" else "x NumPy", "slice": label, "figures": len(rows_of),
                 "var_z": float(np.var(rows_of["z"], ddof=1)) if len(rows_of) > 1 else np.nan,
                 "beyond_1.96": float((rows_of["z"].abs() > Z95).mean()), "beyond_1.96_low": low,
                 "beyond_1.96_high": high, "beyond_2.58": float((rows_of["z"].abs() > Z99).mean()),
                 "outside_intervals": float(outside.mean()),
                 "median_half_width_pct": float(100 * np.expm1(np.median(halves)))}
            )  # fmt: skip
    return pd.DataFrame(rows)


def calibration_lines(table: pd.DataFrame) -> list[str]:
    """The table as lines for the terminal."""
    lines = []
    for row in table.to_dict("records"):
        lines.append(
            f"{row['figure']:8} {row['slice']:14} {row['figures']:4d} figures: var(z) {row['var_z']:5.2f}, "
            f"|z| > 1.96 {row['beyond_1.96']:6.1%} [{row['beyond_1.96_low']:.1%}, {row['beyond_1.96_high']:.1%}], "
            f"|z| > 2.58 {row['beyond_2.58']:6.1%}; outside the intervals {row['outside_intervals']:5.1%}, "
            f"their median half-width {row['median_half_width_pct']:.1f}%"
        )
    return lines


def estimate_from(pairs: list[tuple[list[dict], list[dict]]], source: str) -> RunTerms | None:
    """The run terms the pairs imply (their figures' passes alone against their differences); None without figures."""
    frames = [pair_rows(a, b, within_only=True) for a, b in pairs]
    frames = [f.assign(group=f"{i}:" + f["group"], pair=i) for i, f in enumerate(frames) if not f.empty]
    if not frames:
        return None
    # A group is one model and size in one pair: the unit the terms' degrees of freedom count.
    rows = pd.concat(frames, ignore_index=True)
    columns = ["kind", "backend", "size", "d", "var_a", "var_b", "noise_a", "noise_b", "group", "pair"]
    return estimate_terms([PairedFigure(*row) for row in rows[columns].itertuples(index=False, name=None)], source)


def with_terms(records: list[dict], terms: RunTerms) -> list[dict]:
    """Copies of a run's records whose intervals carry `terms` instead of the terms they were saved with."""
    return [{**record, **term_fields(record, terms)} for record in records]


def cross_check(pairs: list[tuple[list[dict], list[dict]]]) -> tuple[pd.DataFrame, list[str]]:
    """Leave each pair out in turn: terms from the others, z of the pair left out with them. (all z, a line per pair)."""
    frames, lines = [], []
    for held in range(len(pairs)):
        others = [pair for i, pair in enumerate(pairs) if i != held]
        terms = estimate_from(others, f"the {len(others)} other pairs")
        if terms is None:
            continue
        a, b = pairs[held]
        frame = z_frame([(with_terms(a, terms), with_terms(b, terms))])
        if frame.empty:
            continue
        table = calibration_table(frame)
        parts = [
            f"{r['figure']} var(z) {r['var_z']:.2f}, {r['beyond_1.96']:.1%} beyond 1.96, "
            f"{r['outside_intervals']:.1%} outside the intervals, median half-width {r['median_half_width_pct']:.1f}%"
            for r in table[table["slice"] == "all"].to_dict("records")
        ]
        lines.append(f"pair {held + 1} left out: " + "; ".join(parts))
        frames.append(frame.assign(group=f"{held}:" + frame["group"]))
    if not frames:
        return pd.DataFrame(), lines
    # Terciles over every held-out figure together, as for one pooled check.
    return with_terciles(pd.concat(frames, ignore_index=True)), lines


def _read_pairs(paths: list[str]) -> tuple[list[tuple[list[dict], list[dict]]], set[str]]:
    if len(paths) % 2:
        raise ValueError("give the runs in pairs (an even number of files)")
    records = [run_records(p) for p in paths]
    pairs = [(records[i][0], records[i + 1][0]) for i in range(0, len(records), 2)]
    return pairs, {cpu for _, cpu in records}


def build_parser() -> argparse.ArgumentParser:
    """The command line of python -m bench.report.calibration (docs/reference/calibration.md is made from it)."""
    parser = argparse.ArgumentParser(prog="python -m bench.report.calibration", description=__doc__.splitlines()[0])
    parser.add_argument(
        "action",
        choices=("check", "estimate", "cross-check", "probe"),
        help="check the intervals, estimate run terms, check each pair with the terms of the others, "
        "or measure the machine's probe as a covariate of the figures",
    )
    parser.add_argument("runs", nargs="+", help="saved runs in pairs of back-to-back runs of one grid: A B [C D ...]")
    parser.add_argument("--out", help="estimate: write the run terms here (JSON) instead of printing them")
    return parser


def main(argv: list[str] | None = None) -> int:
    """check: the calibration table of pairs of runs; estimate: the run terms they imply; cross-check: each pair
    checked with the terms of the others; probe: the probe as a covariate."""
    args = build_parser().parse_args(argv)
    try:
        pairs, cpus = _read_pairs(args.runs)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.action == "probe":
        probed = [(probed_cases(a), probed_cases(b)) for a, b in pairs]
        runs = [run for pair in probed for run in pair]
        if not any(runs):
            print("error: the runs have no grid case with probed passes", file=sys.stderr)
            return 2
        for line in describe_probe(runs, probed):
            print(line)
        return 0
    if args.action in ("check", "cross-check"):
        if args.action == "check":
            frame, lines = z_frame(pairs), []
        elif len(pairs) < 3:
            print("error: cross-check needs at least three pairs (terms from two or more, one left out)", file=sys.stderr)
            return 2
        else:
            frame, lines = cross_check(pairs)
        if frame.empty:
            print("error: the runs share no figure with an interval", file=sys.stderr)
            return 2
        for line in lines + calibration_lines(calibration_table(frame)):
            print(line)
        return 0
    names = ", ".join(Path(r).name for r in args.runs)
    terms = estimate_from(pairs, f"{len(pairs)} pair(s) of back-to-back runs on {', '.join(sorted(cpus))}: {names}")
    if terms is None:
        print("error: the runs share no figure with an interval", file=sys.stderr)
        return 2
    terms = replace(terms, cpu_models=tuple(sorted(cpus - {"?"})))  # the machines the terms belong to
    text = json.dumps(terms.to_json(), indent=2) + "\n"
    if args.out:
        write_atomic(Path(args.out), lambda handle: handle.write(text))
    else:
        sys.stdout.write(text)
    for line in describe_terms(terms):
        print(line, file=sys.stderr)
    return 0


if __name__ == "__main__":
    run(main)
