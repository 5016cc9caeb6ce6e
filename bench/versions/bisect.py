"""`--bisect CASE OLD NEW`: the first published release after OLD, up to NEW, where CASE regressed against OLD.

The releases between OLD and NEW come from the package index (`pip index
versions mlx`, or a list passed in: tests need no network). Each probe is a
paired comparison of OLD and one release on CASE (plus the NumPy controls of
its model and size, which must stay still), judged by the same verdict as a
whole comparison. Binary search assumes that once the case regressed it stays
regressed, as `git bisect` and `asv find` do; every probe is printed and saved
in bisect.json so a non-monotone history shows. A probe whose verdict is
undecided (its interval reaches both sides of the threshold) first gets more
sessions (bench.versions.confirm); one still undecided stops the search with
exit 4: a guess there would send the search the wrong way. The first
regressed release gets a reproducer (bench.versions.reproducer).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from packaging.version import Version

from bench.engine.run_environment import machine_identity
from bench.versions import confirm, reproducer, verdict_files
from bench.versions.common import EXIT_INCOMPLETE, EXIT_OK, EXIT_USAGE, InstallError
from bench.versions.compare import EXIT_INCONCLUSIVE, grid_cases, install, judge, machine_label
from bench.versions.index import backend_package, published_releases, releases_between
from bench.versions.modes import BisectSettings
from bench.versions.paired import Side, run_paired
from bench.versions.targets import parse_target

BISECT_JSON = "bisect.json"


def control_patterns(case_id: str, cases: list[dict]) -> list[dict]:
    """CASE and the NumPy cases of its model and size (its controls)."""
    mine = next((c for c in cases if c["case_id"] == case_id), None)
    if mine is None:
        return []
    return [mine] + [
        c for c in cases
        if c["case"]["backend"] == "numpy" and c["case"]["model"] == mine["case"]["model"] and c["size"] == mine["size"]
    ]  # fmt: skip


def _reproducer(folder: Path, probe: dict, case_id: str, base, pythons: dict, measured: tuple, identity) -> str:
    """The reproducer of OLD -> the first regressed release (bench.versions.reproducer); its path, or ''."""
    data, python, spec = measured
    point = {key: probe.get(key) for key in ("verdict", "pct_change", "ci_low_pct", "ci_high_pct")}
    point.update(case_id=case_id, older=base.label, newer=probe["release"], status=probe.get("status", "ok"))
    specs = {base.label: base.spec, probe["release"]: spec}
    interpreters = {base.label: pythons[base.label], probe["release"]: python}
    reproducer.write_reproducers(folder, [point], data, specs, interpreters, machine_label(identity))
    probe["reproducer"] = point.get("reproducer", "")
    return probe["reproducer"]


def run_bisect(
    args: BisectSettings, cache, pins, start_worker: Callable, settings, ensure, available: list[str] | None = None
) -> int:
    """Binary search for the first regressed release; prints each probe, writes bisect.json."""
    case_id, old, new = args.case_id, args.old, args.new
    if available is None:  # only releases that can install here: on Linux, those with an mlx-cpu wheel too
        package = backend_package(args.mlx_extra)
        backend = published_releases(package) if package else None
        available = [v for v in published_releases() if backend is None or v in backend]
    candidates = releases_between(available, old, new)
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
    measured: dict[str, tuple] = {}  # release -> (its measurements, its interpreter): the reproducer's material

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
        began = time.perf_counter()
        data = run_paired(sides, chosen, settings, start_worker, verbose=False)
        measured[release] = (data, found[target.label], target.spec)
        comparisons, rows = judge(
            data, [(base.label, target.label)], args.threshold, args.alpha, machine_label(identity)
        )
        row = next(r for r in rows if r["case_id"] == case_id)
        given = args.confirm_budget
        budget = float(given) if given is not None else time.perf_counter() - began  # as long again as the probe
        if row["verdict"] == "undecided" and comparisons[0]["status"] == "ok" and row["n_newer"] and budget > 0:
            outcome = confirm.confirm(
                data, {s.label: s for s in sides}, [confirm.Question(base.label, target.label, [case_id])], chosen,
                settings, start_worker, args.threshold, args.alpha, budget, machine_label(identity),
            )  # fmt: skip
            key = (base.label, target.label, case_id)
            if key in outcome.rows:
                row = dict(outcome.rows[key], first_verdict=row["verdict"], confirmation=outcome.record(key))
        probes[release] = {
            "release": release,
            "status": comparisons[0]["status"],
            **{k: row[k] for k in ("verdict", "pct_change", "ci_low_pct", "ci_high_pct", "p_value_adjusted", "reason")},
            **({"confirmation": row["confirmation"]} if "confirmation" in row else {}),
        }
        print(
            f"bisect: {old} -> {release}: {row['pct_change']:+.1f}% [{row['ci_low_pct']:+.1f}, {row['ci_high_pct']:+.1f}], "
            f"{row['verdict']}"
            + (
                "" if comparisons[0]["status"] == "ok" else f" ({comparisons[0]['status']}: {comparisons[0]['reason']})"
            ),
            flush=True,
        )
        if comparisons[0]["status"] != "ok" or row["verdict"] in ("undecided", "inconclusive"):
            # No yes or no: say why in the words of the verdict engine (a moved NumPy control, a machine that
            # ran differently for the two releases) or, for `undecided`, that the interval reaches both sides.
            if comparisons[0]["status"] != "ok":
                why = f"{comparisons[0]['reason']}; rerun it alone on the machine"
            elif row["verdict"] == "inconclusive":
                why = f"{row['reason']}; rerun it alone on the machine"
            else:
                why = f"its interval reaches both sides of {args.threshold:.0%}; more --sessions narrow it"
            unsure.append((release, why))
            return None
        return row["verdict"] in ("regression", "broken")

    print(
        f"bisect: {case_id} between {old} and {new}: {len(candidates)} releases ({', '.join(candidates)})", flush=True
    )
    unsure: list[tuple[str, str]] = []  # (release, why) of probes that measured but could not decide (not failures)
    low, high = 0, len(candidates) - 1  # invariant: the first regressed release, if any, is in candidates[low..high]
    first = None
    answer = regressed(candidates[high])
    if answer is None:
        status = EXIT_INCONCLUSIVE if unsure else EXIT_INCOMPLETE
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
                status = EXIT_INCONCLUSIVE if unsure else EXIT_INCOMPLETE
                break
            if answer:
                first, high = candidates[mid], mid - 1
            else:
                low = mid + 1
        if status == EXIT_OK:
            print(f"bisect: first release where {case_id} regressed against {old}: {first}")
            script = _reproducer(args.results, probes[first], case_id, base, pythons, measured[first], identity)
            if script:
                print(f"bisect: reproducer {script} (standalone MLX; see {reproducer.FOLDER}/README.md)")
    if unsure:
        release, why = unsure[-1]
        print(f"bisect: cannot tell whether {case_id} regressed against {old} in {release}: {why}")
    verdict_files.write_json(
        args.results / BISECT_JSON,
        {"kind": "mlx-sgd-bench-bisect", "schema_version": 1, "created": verdict_files.now(), "machine": identity,
         "case_id": case_id, "old": old, "new": new, "candidates": candidates, "first_regressed": first,
         "probes": [probes[r] for r in candidates if r in probes]},
    )  # fmt: skip
    return status
