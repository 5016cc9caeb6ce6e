"""The between-run term of every interval, estimated from repeated runs of the suite (docs/stable-numbers.md, "Intervals").

A run's passes see the machine as that run found it. What moves from one run to the next
and not within one (the moment's load, the state the machine is in) is invisible to them,
yet two back-to-back runs of one command differ by it. Its variance is the run term that
bench.stats.intervals adds to each figure's squared standard error.

How large it is depends on the figure. Measured on pairs of default runs (2-core AMD EPYC
VM, nine pairs, docs/figures/amd-epyc-vm-2026-12-07.md, "Run terms that grow with the noise"): the figures whose passes agree
closely agree across runs as closely as their passes say, and the noisy ones move between
runs far more than their passes say (cache-resident NumPy kernels, two-thread cases that
switch between two speeds for minutes). A constant term per cell was therefore too wide for
the quiet figures and too narrow for the noisy ones at once. So the term grows with the
figure's noise: scale x v^power, v the figure's moderated pass-to-pass variance (its noise
level in this run, whatever the number of passes); power per figure kind (`steps` for
steps/s, `ratio` for x NumPy), scale per kind, backend and size class.

Estimated from pairs of runs of the same grid on one machine: for each figure in both runs,
d = log(x2 / x1) has expected square w1 + w2 + t(v1) + t(v2), with w each run's within-run
squared standard error and t the term. For a power p, a cell's scale is the mean over its
figures of (d^2 - w1 - w2) / (v1^p + v2^p), floored at 0 (each figure's excess counts
alike, as in a Pearson dispersion estimate); the power is the one on a grid (POWERS) whose
terms leave z^2 = d^2 / (w1 + w2 + t(v1) + t(v2)) nearest 1 on average in each tercile of
w, the calibration that `calibration check` tests. Power 0 is a constant term. Figures of
one model and size (in one pair of runs) share their moments and a NumPy baseline, so a
cell's degrees of freedom are counted in those groups, not in figures: groups less one. A
cell with fewer than MIN_CELL_GROUPS groups takes the estimate of its backend over every
size, then of its kind.

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
# The powers the estimate chooses among: 0 (a constant term) to 2.5 (the term grows as the noise squared and more).
POWERS = tuple(round(0.1 * i, 1) for i in range(26))
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
        return self.for_cell(kind, str(info.get("backend")), size_class(info.get("n_examples"), info.get("n_features")))

    def for_cell(self, kind: str, backend: str, size: str) -> RunTerm:
        """The term of a figure kind, backend and size class: the narrowest cell there is (cell_keys)."""
        for key in cell_keys(kind, backend, size):
            if key in self.terms:
                return self.terms[key]
        return NO_RUN_TERM

    def to_json(self) -> dict:
        """The terms as saved (run_terms.json's form)."""
        return {
            "source": self.source,
            "terms": {
                k: {
                    "variance": t.variance,
                    "scale": t.scale,
                    "power": t.power,
                    "df": t.df if math.isfinite(t.df) else None,
                }
                for k, t in self.terms.items()
            },
        }


def terms_from_json(document: dict, where: str) -> RunTerms:
    """RunTerms from run_terms.json's form (scale and power optional: files of constant terms); ValueError with
    one line when it is not that."""
    try:
        source = str(document["source"])
        terms = {}
        for key, value in document["terms"].items():
            variance = float(value["variance"])
            scale, power = float(value.get("scale", 0.0)), float(value.get("power", 0.0))
            df = math.inf if value.get("df") is None else float(value["df"])
            numbers = (variance, scale, power)
            if not (all(math.isfinite(x) and x >= 0 for x in numbers) and df > 0):
                raise ValueError(f"{key}: variance {variance}, scale {scale}, power {power}, df {df}")
            terms[str(key)] = RunTerm(variance, df, source, scale, power)
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


@dataclass(frozen=True)
class PairedFigure:
    """A figure found in both runs of a pair: its cell, d = log(x2 / x1), each run's within-run squared standard
    error (w) and pass-to-pass variance (v), and its group (model and size in one pair)."""

    kind: str
    backend: str
    size: str
    d: float
    w1: float
    w2: float
    v1: float
    v2: float
    group: str


def _scale(members: list[PairedFigure], power: float) -> tuple[float, float, int]:
    """(scale, df, groups) of one cell at `power`: the mean of (d^2 - w1 - w2) / (v1^p + v2^p), floored at 0."""
    excess = [(f.d**2 - f.w1 - f.w2) / (f.v1**power + f.v2**power) for f in members]
    groups = len({f.group for f in members})
    scale = max(0.0, float(np.mean(excess)))
    return scale, (float(max(groups - 1, 1)) if scale > 0 else math.inf), groups


def _cells(figures: list[PairedFigure]) -> dict[str, list[PairedFigure]]:
    cells: dict[str, list] = {}
    for f in figures:
        for key in cell_keys(f.kind, f.backend, f.size):
            cells.setdefault(key, []).append(f)
    return cells


def _fit(figures: list[PairedFigure], power: float, source: str) -> dict[str, RunTerm]:
    """The cells' terms at one power (cells with too few groups left out: the wider ones stand in)."""
    terms = {}
    for key, members in sorted(_cells(figures).items()):
        scale, df, groups = _scale(members, power)
        if groups >= MIN_CELL_GROUPS or key.endswith("/*/*"):
            terms[key] = RunTerm(0.0, df, source, scale, power)
    return terms


def tercile_miss(figures: list[PairedFigure], terms: RunTerms) -> float:
    """How far the terms leave the figures from calibrated: the sum over terciles of w of log(mean z^2)^2."""
    w = np.array([f.w1 + f.w2 for f in figures])
    z2 = []
    for f in figures:
        term = terms.for_cell(f.kind, f.backend, f.size)
        z2.append(f.d**2 / (f.w1 + f.w2 + term.between(f.v1) + term.between(f.v2)))
    z2 = np.array(z2)
    order = np.argsort(w, kind="stable")
    return float(sum(np.log(np.mean(z2[part])) ** 2 for part in np.array_split(order, 3) if len(part)))


def estimate_terms(figures: list[PairedFigure], source: str) -> RunTerms:
    """RunTerms from the figures found in both runs of pairs: per kind the power of POWERS that calibrates the
    terciles of w best, then each cell's scale at that power."""
    usable = [f for f in figures if all(math.isfinite(x) for x in (f.d, f.w1, f.w2, f.v1, f.v2)) and f.v1 > 0 < f.v2]
    terms: dict[str, RunTerm] = {}
    for kind in sorted({f.kind for f in usable}):
        mine = [f for f in usable if f.kind == kind]
        fits = [_fit(mine, power, source) for power in POWERS]
        terms.update(min(fits, key=lambda fit: tercile_miss(mine, RunTerms(fit, source))))
    return RunTerms(terms, source)


def describe_terms(terms: RunTerms) -> list[str]:
    """One line per cell: the term as a standard deviation where a figure's passes vary by 2% and by 10%."""
    lines = []
    for key, term in terms.terms.items():
        quiet, noisy = (term.sd_pct(math.log1p(pct) ** 2) for pct in (0.02, 0.10))
        lines.append(
            f"{key}: {quiet:.1f}% between runs where passes vary by 2%, {noisy:.1f}% where by 10% "
            f"(scale {term.scale:.3g}, power {term.power:g}, constant {term.variance:.3g}, df {term.df:.0f})"
        )
    return lines
