"""Whether a saved run is complete or was interrupted: written by the session, read by the report.

A pytest session stopped by Ctrl-C (or by ``-x`` after a failure) still lets
pytest-benchmark save what it has, cases timed in fewer passes than planned
among them. The session therefore marks its saved run in
``machine_info["bench_run"]``: ``{"state": "complete" | "interrupted", "why": ...,
"exit_status": ...}``, and each case carries ``passes_planned`` beside
``passes``. The report (bench.report.load) reads the mark; for a run saved
before runs were marked it infers an interruption from the passes: no
warm case reached the planned number. ``--latest`` and ``--export`` then take
the last complete run (docs/reports.md).
"""

from __future__ import annotations

RUN_FIELD = "bench_run"  # in machine_info
COMPLETE, INTERRUPTED = "complete", "interrupted"
INTERRUPTED_EXIT = 2  # pytest.ExitCode.INTERRUPTED: Ctrl-C, or a KeyboardInterrupt raised inside a test


def run_mark(exit_status: int, stopped: str | None, short_cases: list[str], planned: int) -> dict:
    """The mark of a run that ends with pytest exit status `exit_status`, stopped early for `stopped` (or None)."""
    why = None
    if int(exit_status) == INTERRUPTED_EXIT:
        why = "interrupted (Ctrl-C)"
    elif stopped:
        why = f"stopped early ({stopped})"
    if short_cases:
        shown = ", ".join(short_cases[:2]) + (f" and {len(short_cases) - 2} more" if len(short_cases) > 2 else "")
        what = f"{len(short_cases)} case(s) with fewer than the planned {planned} passes ({shown})"
        why = f"{why}: {what}" if why else what
    return {"state": INTERRUPTED if why else COMPLETE, "why": why, "exit_status": int(exit_status)}


def _int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def why_incomplete(machine_info: dict, benchmarks: list) -> str | None:
    """Why a saved run is not complete (one phrase), or None when it is (or cannot be told from the file)."""
    mark = machine_info.get(RUN_FIELD) if isinstance(machine_info, dict) else None
    if isinstance(mark, dict):
        if mark.get("state") == COMPLETE:
            return None
        return str(mark.get("why") or mark.get("state") or "marked as not complete")
    infos = [b.get("extra_info") for b in benchmarks if isinstance(b, dict) and isinstance(b.get("extra_info"), dict)]
    short = [
        i
        for i in infos
        if _int(i.get("passes_planned")) is not None and _int(i.get("passes")) is not None
        if i["passes"] < i["passes_planned"]
    ]
    if short:
        return f"{len(short)} case(s) with fewer passes than planned"
    # Saved before runs were marked: a case timed in passes (every phase but a cold start) that never
    # reached the session's planned number means the session stopped before its later passes.
    settings = machine_info.get("bench_settings") if isinstance(machine_info, dict) else None
    planned = _int(settings.get("passes")) if isinstance(settings, dict) else None
    warm = [_int(i.get("passes")) for i in infos if i.get("phase", "warm") != "cold"]
    warm = [p for p in warm if p is not None]
    if planned and planned > 1 and warm and max(warm) < planned:
        return f"no case has the planned {planned} passes (at most {max(warm)}): the session stopped early"
    return None
