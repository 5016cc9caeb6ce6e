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

The half-width's quantile is calibrated the same way (split-conformal): with three pairs or
more, each pair is held out in turn, the terms estimated from the others, and the 95%
quantile of |z| over every held-out figure (at the conformal rank) is saved with each term
of the kind. The intervals then hold 95% of reruns where Student's t at the moderated
variances' few degrees of freedom held 98% (bench.stats.intervals, step 3).

The suite ships the terms it estimated on its own runs, one file per kind of machine beside this
module (run_terms*.json, each with the runs and the CPU models that made it); a run takes its own
CPU model's (shipped_for), another machine the default, run_terms.json. `python -m bench.report.calibration estimate A.json
B.json [C.json D.json ...] --out FILE` estimates them from a reader's own pairs of runs, and
`pytest --benchmark-only --run-terms FILE` uses them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from bench.stats.intervals import CONFIDENCE, NO_RUN_TERM, RunTerm

SHIPPED_TERMS = Path(__file__).with_name("run_terms.json")  # the default estimate
SHIPPED_PATTERN = "run_terms*.json"  # the default and each machine kind's own estimate, beside this module
KINDS = ("steps", "ratio")
MIN_CELL_GROUPS = 4  # fewer model-and-size groups than this in a cell: the wider estimate stands in
# The powers the estimate chooses among: 0 (a constant term) to 2.5 (the term grows as the noise squared and more).
POWERS = tuple(round(0.1 * i, 1) for i in range(26))
MIN_QUANTILE_PAIRS = 3  # the interval's quantile is calibrated on pairs held out in turn: at least three pairs
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
    # The CPU models (as the run records name them, run_environment.cpu_model) whose runs the terms were estimated
    # on: the shipped set picks a machine's own (shipped_for); empty where unknown.
    cpu_models: tuple[str, ...] = ()

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
            "cpu_models": list(self.cpu_models),
            "terms": {
                k: {
                    "variance": t.variance,
                    "scale": t.scale,
                    "power": t.power,
                    "df": t.df if math.isfinite(t.df) else None,
                    "quantile": t.quantile if math.isfinite(t.quantile) else None,
                }
                for k, t in self.terms.items()
            },
        }


def terms_from_json(document: dict, where: str) -> RunTerms:
    """RunTerms from run_terms.json's form (scale, power and quantile optional: files of constant terms); ValueError
    with one line when it is not that."""
    try:
        source = str(document["source"])
        terms = {}
        for key, value in document["terms"].items():
            variance = float(value["variance"])
            scale, power = float(value.get("scale", 0.0)), float(value.get("power", 0.0))
            df = math.inf if value.get("df") is None else float(value["df"])
            quantile = math.nan if value.get("quantile") is None else float(value["quantile"])
            numbers = (variance, scale, power)
            if not (all(math.isfinite(x) and x >= 0 for x in numbers) and df > 0 and not quantile <= 0):
                raise ValueError(
                    f"{key}: variance {variance}, scale {scale}, power {power}, df {df}, quantile {quantile}"
                )
            terms[str(key)] = RunTerm(variance, df, source, scale, power, quantile)
        cpu_models = document.get("cpu_models") or []
        if not isinstance(cpu_models, list) or not all(isinstance(c, str) for c in cpu_models):
            raise ValueError(f"cpu_models: {cpu_models!r} is not a list of CPU model names")
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        raise ValueError(f"{where}: not a file of run terms ({error})") from None
    return RunTerms(terms, source, tuple(cpu_models))


def load_terms(path: str | Path | None = None, cpu_model: str | None = None) -> RunTerms:
    """The terms in `path`; without one, the shipped estimate for `cpu_model` (shipped_for). ValueError with one
    line when unreadable."""
    if not path:
        return shipped_for(cpu_model)
    return _read_terms(Path(path))


def shipped_for(cpu_model: str | None = None) -> RunTerms:
    """The shipped terms estimated on runs of this CPU model; another model, or none named: the default estimate
    (SHIPPED_TERMS).

    How far a figure moves between runs is a property of the machine: on a 2-core Intel Xeon VM the terms
    estimated on the AMD EPYC VM made every interval too wide (docs/stable-numbers.md, "Intervals"). So each
    kind's own estimate ships beside the default, chosen by the CPU model the run records.
    """
    default = _read_terms(SHIPPED_TERMS)
    if not cpu_model or cpu_model in default.cpu_models:
        return default
    for path in sorted(SHIPPED_TERMS.parent.glob(SHIPPED_PATTERN)):
        if path != SHIPPED_TERMS:
            terms = _read_terms(path)
            if cpu_model in terms.cpu_models:
                return terms
    return default


def _read_terms(path: Path) -> RunTerms:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: cannot read run terms ({error.__class__.__name__}: {error})") from None
    return terms_from_json(document, str(path))


@dataclass(frozen=True)
class PairedFigure:
    """A figure found in both runs of a pair: its cell, d = log(x2 / x1), each run's within-run squared standard
    error (w) and pass-to-pass variance (v), its group (model and size in one pair) and its pair."""

    kind: str
    backend: str
    size: str
    d: float
    w1: float
    w2: float
    v1: float
    v2: float
    group: str
    pair: int = 0


class _Figures:
    """One kind's paired figures as arrays, for the estimate's many fits."""

    def __init__(self, figures: list[PairedFigure]):
        self.figures = figures
        self.d, self.w1, self.w2, self.v1, self.v2 = (
            np.array([getattr(f, name) for f in figures], dtype=float) for name in ("d", "w1", "w2", "v1", "v2")
        )
        self.pair = np.array([f.pair for f in figures])
        self.cells = {}  # cell key -> (index array, groups)
        for index, f in enumerate(figures):
            for key in cell_keys(f.kind, f.backend, f.size):
                self.cells.setdefault(key, []).append(index)
        self.cells = {k: (np.array(v), len({figures[i].group for i in v})) for k, v in self.cells.items()}
        # Each figure's narrowest cell with a term (cells of too few groups take the wider one's).
        kept = {k for k, (_, groups) in self.cells.items() if groups >= MIN_CELL_GROUPS or k.endswith("/*/*")}
        self.cell_of = [next(k for k in cell_keys(f.kind, f.backend, f.size) if k in kept) for f in figures]
        self.kept = sorted(kept)

    def fit(self, power: float, source: str, rows: np.ndarray | None = None) -> dict[str, RunTerm]:
        """Each kept cell's term at `power` from the figures `rows` (all by default): the mean excess."""
        use = np.ones(len(self.figures), bool) if rows is None else rows
        excess = (self.d**2 - self.w1 - self.w2) / (self.v1**power + self.v2**power)
        terms = {}
        for key in self.kept:
            members = self.cells[key][0]
            members = members[use[members]]
            if not len(members):
                continue
            scale = max(0.0, float(np.mean(excess[members])))
            groups = len({self.figures[i].group for i in members})
            terms[key] = RunTerm(0.0, float(max(groups - 1, 1)) if scale > 0 else math.inf, source, scale, power)
        return terms

    def z(self, terms: dict[str, RunTerm]) -> np.ndarray:
        """z of every figure under the terms (a figure whose cell has no term: its passes alone)."""
        found = [terms.get(k, NO_RUN_TERM) for k in self.cell_of]
        constant = np.array([max(t.variance, 0.0) for t in found])
        scale, power = np.array([t.scale for t in found]), np.array([t.power for t in found])
        between = 2 * constant + scale * (self.v1**power + self.v2**power)
        return self.d / np.sqrt(self.w1 + self.w2 + between)

    def tercile_miss(self, terms: dict[str, RunTerm], rows: np.ndarray | None = None) -> float:
        """How far the terms leave the figures `rows` from calibrated: the sum over terciles of w of log(mean z^2)^2."""
        use = np.flatnonzero(np.ones(len(self.figures), bool) if rows is None else rows)
        z2 = self.z(terms)[use] ** 2
        order = np.argsort((self.w1 + self.w2)[use], kind="stable")
        return float(sum(np.log(np.mean(z2[part])) ** 2 for part in np.array_split(order, 3) if len(part)))

    def best(self, source: str, rows: np.ndarray | None = None) -> dict[str, RunTerm]:
        """The terms at the power of POWERS that calibrates the terciles of w best, from the figures `rows`."""
        fits = [self.fit(power, source, rows) for power in POWERS]
        return min(fits, key=lambda terms: self.tercile_miss(terms, rows))

    def held_out_quantile(self, source: str) -> float:
        """The 95% quantile of |z| over every pair held out in turn from terms estimated on the others (NaN below
        MIN_QUANTILE_PAIRS pairs): the split-conformal calibration of the interval's half-width."""
        pairs = np.unique(self.pair)
        if len(pairs) < MIN_QUANTILE_PAIRS:
            return math.nan
        held = []
        for pair in pairs:
            terms = self.best(source, self.pair != pair)
            held.append(np.abs(self.z(terms)[self.pair == pair]))
        scores = np.sort(np.concatenate(held))
        # The conformal rank: the ceil((n + 1) x 0.95)-th smallest score covers a new one with probability >= 95%.
        rank = min(len(scores), math.ceil((len(scores) + 1) * CONFIDENCE))
        return float(scores[rank - 1])


def tercile_miss(figures: list[PairedFigure], terms: RunTerms) -> float:
    """How far `terms` leave the figures from calibrated: the sum over terciles of w of log(mean z^2)^2."""
    table = _Figures(figures)
    return table.tercile_miss({k: terms.for_cell(*k.split("/")) for k in table.kept})


def estimate_terms(figures: list[PairedFigure], source: str) -> RunTerms:
    """RunTerms from the figures found in both runs of pairs: per kind the power of POWERS that calibrates the
    terciles of w best, each cell's scale at that power, and the quantile of |z| on pairs held out in turn."""
    usable = [f for f in figures if all(math.isfinite(x) for x in (f.d, f.w1, f.w2, f.v1, f.v2)) and f.v1 > 0 < f.v2]
    terms: dict[str, RunTerm] = {}
    for kind in sorted({f.kind for f in usable}):
        table = _Figures([f for f in usable if f.kind == kind])
        quantile = table.held_out_quantile(source)
        terms.update({k: replace(t, quantile=quantile) for k, t in table.best(source).items()})
    return RunTerms(terms, source)


def describe_terms(terms: RunTerms) -> list[str]:
    """One line per cell: the term as a standard deviation where a figure's passes vary by 2% and by 10%."""
    lines = []
    for key, term in terms.terms.items():
        quiet, noisy = (term.sd_pct(math.log1p(pct) ** 2) for pct in (0.02, 0.10))
        lines.append(
            f"{key}: {quiet:.1f}% between runs where passes vary by 2%, {noisy:.1f}% where by 10% "
            f"(scale {term.scale:.3g}, power {term.power:g}, constant {term.variance:.3g}, df {term.df:.0f}; "
            f"95% quantile of |z| on held-out pairs {term.quantile:.2f})"
        )
    return lines
