"""`--bisect CASE OLD NEW`: the first published release after OLD, up to NEW, where CASE regressed against OLD.

The releases between OLD and NEW come from the package index (`pip index
versions mlx`, or a list passed in: tests need no network). Each probe is a
paired comparison of OLD and one release on CASE (plus the NumPy controls of
its model and size, which must stay still), judged by the same verdict as a
whole comparison. Binary search assumes that once the case regressed it stays
regressed, as `git bisect` and `asv find` do; every probe is printed and saved
in bisect.json so a non-monotone history shows.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from packaging.version import InvalidVersion, Version

from bench.environment import machine_identity
from bench.versions import output
from bench.versions.common import EXIT_INCOMPLETE, EXIT_OK, EXIT_USAGE, InstallError
from bench.versions.compare import grid_cases, install, judge, machine_label
from bench.versions.paired import Side, run_paired
from bench.versions.targets import parse_target

BISECT_JSON = "bisect.json"
_AVAILABLE = re.compile(r"Available versions:\s*(.+)")


def published_releases(package: str = "mlx") -> list[str]:
    """Every published release of `package`, from `pip index versions`; [] when the index cannot be read."""
    proc = subprocess.run([sys.executable, "-m", "pip", "index", "versions", package], capture_output=True, text=True)
    match = _AVAILABLE.search(proc.stdout)
    return [v.strip() for v in match.group(1).split(",")] if match else []


def releases_between(available: list[str], old: str, new: str) -> list[str]:
    """The final (non pre-)releases in (old, new], oldest first."""
    found = []
    for text in available:
        try:
            version = Version(text)
        except InvalidVersion:
            continue
        if not version.is_prerelease and Version(old) < version <= Version(new):
            found.append(str(version))
    return sorted(set(found), key=Version)


def control_patterns(case_id: str, cases: list[dict]) -> list[dict]:
    """CASE and the NumPy cases of its model and size (its controls)."""
    mine = next((c for c in cases if c["case_id"] == case_id), None)
    if mine is None:
        return []
    return [mine] + [
        c for c in cases
        if c["case"]["backend"] == "numpy" and c["case"]["model"] == mine["case"]["model"] and c["size"] == mine["size"]
    ]  # fmt: skip


def run_bisect(args, cache, pins, start_worker: Callable, settings, ensure, available: list[str] | None = None) -> int:
    """Binary search for the first regressed release; prints each probe, writes bisect.json."""
    case_id, old, new = args.bisect
    candidates = releases_between(published_releases() if available is None else available, old, new)
    if not candidates or candidates[-1] != str(Version(new)):
        print(
            f"python -m bench.versions: error: {new} is not a published release after {old} (found: {', '.join(candidates) or 'none'})",
            file=sys.stderr,
        )
        return EXIT_USAGE
    base = parse_target(old, args.mlx_extra)
    pythons, failures = install([base], cache, pins, ensure=ensure)
    if failures:
        return EXIT_INCOMPLETE
    cases, _ = grid_cases(
        start_worker,
        Side(base.label, Path(pythons[base.label]), base.version),
        args.sizes,
        args.mlx_device,
        settings.timeout_s,
    )
    chosen = control_patterns(case_id, cases)
    if not chosen:
        print(f"python -m bench.versions: error: {case_id} is not a case of the grid {args.sizes}", file=sys.stderr)
        return EXIT_USAGE
    identity = machine_identity()
    probes: dict[str, dict] = {}

    def regressed(release: str) -> bool | None:
        """The probe of one release against OLD: True regression, False not, None could not tell (inconclusive/failed)."""
        target = parse_target(release, args.mlx_extra)
        try:
            found, failed = install([target], cache, pins, ensure=ensure)
        except InstallError as error:
            failed = {target.label: str(error)}
        if failed:
            probes[release] = {"release": release, "verdict": "not installed", "reason": failed[target.label]}
            return None
        sides = [
            Side(base.label, Path(pythons[base.label]), base.version),
            Side(target.label, Path(found[target.label]), target.version),
        ]
        data = run_paired(sides, chosen, settings, start_worker, verbose=False)
        comparisons, rows = judge(
            data, [(base.label, target.label)], args.threshold, args.alpha, machine_label(identity)
        )
        row = next(r for r in rows if r["case_id"] == case_id)
        probes[release] = {
            "release": release,
            "status": comparisons[0]["status"],
            **{k: row[k] for k in ("verdict", "pct_change", "ci_low_pct", "ci_high_pct", "p_value_adjusted", "reason")},
        }
        print(
            f"bisect: {old} -> {release}: {row['pct_change']:+.1f}% [{row['ci_low_pct']:+.1f}, {row['ci_high_pct']:+.1f}], "
            f"{row['verdict']}"
            + (
                "" if comparisons[0]["status"] == "ok" else f" ({comparisons[0]['status']}: {comparisons[0]['reason']})"
            ),
            flush=True,
        )
        if comparisons[0]["status"] != "ok":
            return None
        return row["verdict"] == "regression"

    print(
        f"bisect: {case_id} between {old} and {new}: {len(candidates)} releases ({', '.join(candidates)})", flush=True
    )
    low, high = 0, len(candidates) - 1  # invariant: the first regressed release, if any, is in candidates[low..high]
    first = None
    answer = regressed(candidates[high])
    if answer is None:
        status = EXIT_INCOMPLETE
    elif not answer:
        status = EXIT_OK
        print(f"bisect: {case_id} did not regress from {old} to {new}")
    else:
        first, status = candidates[high], EXIT_OK
        high -= 1
        while low <= high:
            mid = (low + high) // 2
            answer = regressed(candidates[mid])
            if answer is None:
                status = EXIT_INCOMPLETE
                break
            if answer:
                first, high = candidates[mid], mid - 1
            else:
                low = mid + 1
        if status == EXIT_OK:
            print(f"bisect: first release where {case_id} regressed against {old}: {first}")
    output.write_json(
        args.results / BISECT_JSON,
        {"kind": "mlx-sgd-bench-bisect", "schema_version": 1, "created": output.now(), "machine": identity,
         "case_id": case_id, "old": old, "new": new, "candidates": candidates, "first_regressed": first,
         "probes": [probes[r] for r in candidates if r in probes]},
    )  # fmt: skip
    return status
