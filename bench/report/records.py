"""The release runner's own records the report shows: told apart from results by their `kind`, checked, kept whole.

`python -m bench.versions` writes release-verdicts.json (a paired comparison),
self-test.json (the gate checking itself) and history.json (the release
history); each names its kind and schema version. A record of a known kind
but another schema version, or without its main field, is skipped with the
reason, like any unusable file; so is one with a field of the wrong type (a
verdict row whose ``pct_change`` is text, a history whose ``releases`` is a
number): the record is refused whole, with the field's place, and the rest
of the report is built without it.
"""

from __future__ import annotations

import math

# The "kind" of the release runner's records, and the schema version this report reads.
RELEASE_VERDICTS_KIND = "mlx-sgd-bench-release-verdicts"
SELF_TEST_KIND = "mlx-sgd-bench-self-test"
HISTORY_KIND = "mlx-sgd-bench-release-history"
RECORD_KINDS = {RELEASE_VERDICTS_KIND: ("rows", list), SELF_TEST_KIND: ("status", str), HISTORY_KIND: ("rows", list)}


class _Spec:
    """What one field of a record may hold (None, a missing value, is always allowed)."""

    def __init__(self, expected: str, accepts, fields: dict | None = None, items=None):
        self.expected, self.accepts, self.fields, self.items = expected, accepts, fields or {}, items

    def problem(self, value, where: str) -> str | None:
        """Why `value` at `where` is not of this kind (one phrase), or None."""
        if value is None:
            return None
        if not self.accepts(value):
            return f"{where} is {_type_name(value)}; {self.expected} was expected"
        if isinstance(value, dict):
            for key, spec in self.fields.items():
                why = spec.problem(value.get(key), f"{where}.{key}")
                if why:
                    return why
        if isinstance(value, list) and self.items is not None:
            for index, item in enumerate(value):
                why = self.items.problem(item, f"{where}[{index}]")
                if why:
                    return why
        return None


def _type_name(value) -> str:
    """How a wrong value is named in the message: its JSON type (and the value, where short)."""
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, float) and not math.isfinite(value):
        return f"a number ({value})"
    if isinstance(value, (int, float)):
        return "a number"
    return {dict: "an object", list: "a list", str: "text"}.get(type(value), f"a {type(value).__name__}")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value))


NUMBER = _Spec("a finite number", _is_number)
TEXT = _Spec("text", lambda v: isinstance(v, str))
FLAG = _Spec("true or false", lambda v: isinstance(v, bool))
LABEL = _Spec("a release name", lambda v: isinstance(v, str) or _is_number(v))
TEXTS = _Spec("a list of text", lambda v: isinstance(v, list), items=TEXT)
LABELS = _Spec("a list of release names", lambda v: isinstance(v, list), items=LABEL)
MACHINE = _Spec("an object or text", lambda v: isinstance(v, (dict, str)), {"node": TEXT, "host": TEXT})
REASONS = _Spec(
    "an object of release: text", lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values())
)


def _object(fields: dict) -> _Spec:
    return _Spec("an object", lambda v: isinstance(v, dict), fields)


def _rows(fields: dict) -> _Spec:
    return _Spec("a list of objects", lambda v: isinstance(v, list), items=_object(fields))


# The fields of a verdict row (bench.versions.verdict_files.ROW_FIELDS) and of a history row or change point.
_CASE = {"machine": TEXT, "case_id": TEXT, "model": TEXT, "backend": TEXT, "control": FLAG, "verdict": TEXT}
_CASE |= {"older": LABEL, "newer": LABEL, "method": TEXT, "reason": TEXT, "status": TEXT, "release": LABEL}
_FIGURES = (
    "pct_change", "ci_low_pct", "ci_high_pct", "p_value", "p_value_adjusted", "min_detectable_pct", "passes_needed",
    "n_older", "n_newer", "noise_pct", "steps_per_round", "p_faster_adjusted", "pct_vs_oldest", "slowdown_pct",
)  # fmt: skip
_ROW = _CASE | dict.fromkeys(_FIGURES, NUMBER)
_COMMON = {"created": TEXT, "machine": MACHINE, "settings": _object({"threshold": NUMBER, "passes": NUMBER})}
SCHEMAS = {
    RELEASE_VERDICTS_KIND: _object(
        _COMMON
        | {"rows": _rows(_ROW), "comparisons": _rows({"older": LABEL, "newer": LABEL, "status": TEXT, "reason": TEXT})}
    ),
    SELF_TEST_KIND: _object(
        _COMMON
        | {
            "status": TEXT,
            "release": LABEL,
            "summary": TEXT,
            "false_regressions": NUMBER,
            "noise_pct_median": NUMBER,
            "min_detectable_pct_median": NUMBER,
            "fit_to_gate": FLAG,
            "planted": _rows(_ROW | {"caught": FLAG}),
            "calibration": _object(
                dict.fromkeys(("coverage_95", "ks_p_value", "cases", "p_below_0_01", "p_below_0_05"), NUMBER)
            ),
            "unfit_reasons": TEXTS,
            "detection_curve": _rows(
                dict.fromkeys(("slowdown_pct", "applied_pct_median", "measured_pct_median", "detection_rate"), NUMBER)
            ),
        }
    ),
    HISTORY_KIND: _object(
        _COMMON
        | {
            "releases": LABELS,
            "not_measured": REASONS,
            "comparisons": _rows({"older": LABEL, "newer": LABEL, "status": TEXT, "reason": TEXT}),
            "change_points": _rows(_ROW),
            "pair_rows": _rows(_ROW),
            "rows": _rows(_ROW),
        }
    ),
}


def record_kind(doc) -> tuple[str | None, str | None]:
    """(kind, None) for a usable release-verdicts, self-test or history record, (kind, why) for an unusable one,
    (None, None) for any other document."""
    kind = doc.get("kind") if isinstance(doc, dict) else None
    if not isinstance(kind, str) or kind not in RECORD_KINDS:
        return None, None
    if doc.get("schema_version") != 1:
        return kind, f"{kind} of schema_version {doc.get('schema_version')!r}; this report reads version 1"
    key, kind_type = RECORD_KINDS[kind]
    if not isinstance(doc.get(key), kind_type):
        return kind, f"{kind} without its {key!r} field"
    why = SCHEMAS[kind].problem(doc, "record")
    if why:
        return kind, f"{kind} with a field of the wrong type: {why.removeprefix('record.')}"
    return kind, None
