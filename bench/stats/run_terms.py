"""The between-run term of every interval, estimated from repeated runs of the suite (docs/stable-numbers.md, "Intervals").

A run's passes see the machine as that run found it. What moves from one run to the next
and not within one (the moment's load, the state the machine is in) is invisible to them,
yet two back-to-back runs of one command differ by it. Its variance, per figure kind
(`steps` for steps/s, `ratio` for x NumPy), backend and size class, is the run term that
bench.stats.intervals adds to each figure's squared standard error.

It is estimated by the method of moments from pairs of runs of the same grid on one machine:
for each figure in both runs, d = log(x2 / x1) has expected square w1 + w2 + 2 tau^2, with
w each run's within-run squared standard error (the passes' part, saved with every case as
`*_se_within_log`). So tau^2 = max(0, mean(d^2 / 2 - (w1 + w2) / 2)) over a cell's figures.
Figures of one model and size (in one pair of runs) share their moments and a NumPy baseline,
so a cell's degrees of freedom are counted in those groups, not in figures: groups less one. A cell with fewer than
MIN_CELL_GROUPS groups takes the estimate of its backend over every size, then of its kind.

The suite ships the terms it estimated on its own runs (run_terms.json beside this module,
with the runs and machine that made it); `python -m bench.report.calibration estimate A.json
B.json [C.json D.json ...] --out FILE` estimates them from a reader's own pairs of runs, and
`pytest --benchmark-only --run-terms FILE` uses them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.stats.intervals import NO_RUN_TERM, RunTerm

SHIPPED_TERMS = Path(__file__).with_name("run_terms.json")
KINDS = ("steps", "ratio")
MIN_CELL_GROUPS = 4  # fewer model-and-size groups than this in a cell: the wider estimate stands in
# Size classes by elements of X (n x d): the grid's small problems live in cache and suffer most from a busy
# neighbour; the large ones stream from memory.
SIZE_CLASSES = ((100_000, "small"), (1_000_000, "medium"), (math.inf, "large"))


def size_class(n_examples, n_features) -> str:
    """The size class of a problem: small (n x d <= 1e5), medium (<= 1e6) or large."""
    try:
        elements = int(n_examples) * int(n_features)
    except (TypeError, ValueError):
        return "large"
    return next(name for bound, name in SIZE_CLASSES if elements <= bound)


def cell_keys(kind: str, backend: str, size: str) -> tuple[str, str, str]:
    """The keys a figure's term is looked up by, narrowest first: kind/backend/size, kind/backend/*, kind/*/*."""
    return f"{kind}/{backend}/{size}", f"{kind}/{backend}/*", f"{kind}/*/*"


@dataclass(frozen=True)
class RunTerms:
    """Between-run terms by cell key, and where they came from (one line)."""

    terms: dict[str, RunTerm] = field(default_factory=dict)
    source: str = "none"

    def for_figure(self, kind: str, info: dict) -> RunTerm:
        """The term of one figure (kind `steps` or `ratio`) of a case whose saved extra_info is `info`."""
        size = size_class(info.get("n_examples"), info.get("n_features"))
        for key in cell_keys(kind, str(info.get("backend")), size):
            if key in self.terms:
                return self.terms[key]
        return NO_RUN_TERM

    def to_json(self) -> dict:
        """The terms as saved (run_terms.json's form)."""
        return {
            "source": self.source,
            "terms": {
                k: {"variance": t.variance, "df": t.df if math.isfinite(t.df) else None} for k, t in self.terms.items()
            },
        }


def terms_from_json(document: dict, where: str) -> RunTerms:
    """RunTerms from run_terms.json's form; ValueError with one line when it is not that."""
    try:
        source = str(document["source"])
        terms = {}
        for key, value in document["terms"].items():
            variance = float(value["variance"])
            df = math.inf if value.get("df") is None else float(value["df"])
            if not (math.isfinite(variance) and variance >= 0 and df > 0):
                raise ValueError(f"{key}: variance {variance}, df {df}")
            terms[str(key)] = RunTerm(variance, df, source)
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        raise ValueError(f"{where}: not a file of run terms ({error})") from None
    return RunTerms(terms, source)


def load_terms(path: str | Path | None = None) -> RunTerms:
    """The terms in `path` (default: the suite's shipped estimate); ValueError with one line when unreadable."""
    path = Path(path) if path else SHIPPED_TERMS
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: cannot read run terms ({error.__class__.__name__}: {error})") from None
    return terms_from_json(document, str(path))


def _moments(rows: list[tuple[float, float, float, str]]) -> tuple[float, float, int]:
    """(tau^2, df, groups) from rows (d, w1, w2, group) of one cell.

    tau^2 is the mean of d^2 / 2 - (w1 + w2) / 2, floored at 0. Its degrees of freedom
    are those of a variance estimated from independent units: the groups less one (the
    figures of one group share their moments and are one unit, not several).
    """
    d, w1, w2 = (np.array([r[i] for r in rows], dtype=float) for i in range(3))
    groups = len({r[3] for r in rows})
    tau2 = max(0.0, float(np.mean(d**2 / 2 - (w1 + w2) / 2)))
    return tau2, (float(max(groups - 1, 1)) if tau2 > 0 else math.inf), groups


def estimate_terms(rows: list[tuple[str, str, str, float, float, float, str]], source: str) -> RunTerms:
    """RunTerms from rows (kind, backend, size class, d, w1, w2, group) of figures found in both runs of a pair."""
    cells: dict[str, list] = {}
    for kind, backend, size, d, w1, w2, group in rows:
        if not all(math.isfinite(x) for x in (d, w1, w2)):
            continue
        for key in cell_keys(kind, backend, size):
            cells.setdefault(key, []).append((d, w1, w2, group))
    terms = {}
    for key, members in sorted(cells.items()):
        tau2, df, groups = _moments(members)
        if groups >= MIN_CELL_GROUPS or key.endswith("/*/*"):
            terms[key] = RunTerm(tau2, df, source)
    return RunTerms(terms, source)
