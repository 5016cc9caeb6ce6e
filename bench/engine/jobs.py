"""The engine's two records: a Job (one pass of one case, to run) and a PassResult (what the pass measured).

A Job names its problem (model, size, batch, width), never its arrays: the
worker rebuilds the data from the same seeded generator (bench.cases.datasets), so
every process trains on the same bytes. Both records travel as JSON between
the session and a worker (bench.engine.worker) and keep one name for every
field from end to end: K is ``steps_per_round`` here, in the worker, and in the
saved results.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from bench.cases import models
from bench.cases.case import Case
from bench.cases.sizes import Size
from bench.engine import defaults
from bench.engine.plants import Plants

SCENARIOS = ("grid", "blog", "cold")


@dataclass(frozen=True)
class Job:
    """One pass of one case: what to build, how to time it and what to check after.

    first_pass: time the first step, calibrate K (unless steps_per_round is
    given), measure memory and, where asked, the bare loop; a later pass
    rebuilds the trainer and times the same K after one warm-up round.
    timed False: one untimed round, then the checks (the CI correctness pass).
    plants: what the release runner's self-test and the isolation proof plant
    (bench.engine.plants.Plants); None in every production job.
    """

    case: Case
    size: Size
    lr: float = models.LEARNING_RATE
    scenario: str = "grid"
    steps_per_round: int | None = None  # None: calibrate to round_time_s
    round_time_s: float = defaults.ROUND_TIME_S
    rounds: int = defaults.ROUNDS_PER_PASS
    cpus: tuple[int, ...] | None = None  # every thread of the case runs on these CPUs (None: anywhere)
    first_pass: bool = True
    timed: bool = True
    check_correctness: bool = True
    overhead_check: bool = False  # the bare-loop comparison, interleaved with the timed rounds
    plants: Plants | None = None  # the self-test's and the isolation proof's only (bench.engine.plants)

    def __post_init__(self):
        if self.scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {self.scenario!r}; known: {', '.join(SCENARIOS)}")

    @property
    def case_id(self) -> str:
        """The case's readable id (bench.cases.identity)."""
        return self.case.case_id(self.size)

    @property
    def group(self) -> tuple:
        """The isolation group of the job (bench.engine.isolation): scenario, backend, model, size."""
        return (self.scenario, self.case.backend, self.case.model, self.size.id)

    def later(self, steps_per_round: int, rounds: int, check_correctness: bool = False) -> Job:
        """The job of a later pass of the same case: the same K and rounds, a fresh trainer, no first-pass extras.

        The barrier is checked after every pass; correctness (10 steps against the
        float64 reference, seconds for the largest MLP cases) is checked in the
        first pass, whose code a later pass runs again, unless asked for.
        """
        return Job(
            case=self.case,
            size=self.size,
            lr=self.lr,
            scenario=self.scenario,
            steps_per_round=steps_per_round,
            round_time_s=self.round_time_s,
            rounds=rounds,
            cpus=self.cpus,
            first_pass=False,
            timed=True,
            check_correctness=check_correctness,
            plants=self.plants,
        )

    def to_json(self) -> dict:
        """The job as JSON-ready data."""
        data = asdict(self)
        data["cpus"] = list(self.cpus) if self.cpus is not None else None
        if self.plants is None:
            del data["plants"]  # a production job's record has no plants at all
        return data

    @classmethod
    def from_json(cls, data: dict) -> Job:
        """A job from to_json's data."""
        data = dict(data)
        data["case"] = Case(**data["case"])
        data["size"] = Size(**data["size"])
        data["cpus"] = tuple(data["cpus"]) if data.get("cpus") is not None else None
        data["plants"] = Plants(**data["plants"]) if data.get("plants") else None
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class PassResult:
    """What one pass measured, in the process that took it.

    round_times_s: seconds of each timed round of steps_per_round steps.
    probe_s: the machine's probe right before the pass (bench.engine.steadiness).
    checks: the correctness figures (bench.cases.checks.check_correctness) and barrier_pending_s.
    info: the first pass's extras for extra_info (first_step_s, layout, peak memory, ...).
    planted: the slowdown actually applied to the rounds (time with plant / time without), when planted.
    worker: the process: pid, CPUs it may use, the worker's serial number, and whether it
    was replaced before this pass because of leftover state (bench.engine.isolation).
    """

    case_id: str
    steps_per_round: int
    rounds_per_pass: int
    round_times_s: list[float]
    probe_s: float | None = None
    pid: int | None = None
    cpus: list[int] | None = None
    checks: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    planted: float | None = None
    worker: dict = field(default_factory=dict)
    # Seconds the pass spent in each phase in its process: setup (probe, data, trainer, first step, K,
    # warm-up), rounds (the timed rounds, with pass 1's bare-loop rounds), checks, memory (pass 1).
    phases_s: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        """The result as JSON-ready data."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> PassResult:
        """A result from to_json's data."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
