"""The worker protocol: one JSON request per line on stdin, one JSON answer line for each.

The engine's worker (bench.engine.worker) serves it and its client
(bench.engine.client) speaks it; so do a data-parallel group's ranks
(bench.distributed.rank, over their control connection) and the group that
drives them (bench.distributed.launcher). A request names its command in "cmd"; "quit"
(or the end of stdin) ends the worker. Every answer has "ok"; a failed request answers {"ok": false,
"error": one line} and the worker goes on, with the traceback on stderr.

The client reads answers through LineBuffer: raw bytes in, whole lines out, so
that a line that arrived beside another is never left in a hidden buffer and a
partial line never blocks a reader past its deadline.
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable


class LineBuffer:
    """Bytes as they arrive from a pipe, cut into whole lines; a partial line waits for the rest."""

    def __init__(self) -> None:
        self._pending = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Add what arrived; return every line it completed, without its newline, in order."""
        self._pending += data
        if b"\n" not in data:
            return []
        *lines, rest = bytes(self._pending).split(b"\n")
        self._pending = bytearray(rest)
        return lines

    @property
    def partial(self) -> bytes:
        """What arrived after the last newline (a line not finished yet)."""
        return bytes(self._pending)


def request_line(cmd: str, **fields) -> bytes:
    """One request as the line that carries it."""
    return (json.dumps({"cmd": cmd, **fields}) + "\n").encode()


def answer_of(line: bytes) -> dict | None:
    """The answer a line carries, or None for a line that is no answer (blank, a stray print, not an object)."""
    try:
        answer = json.loads(line)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError: bytes that are no text
        return None
    return answer if isinstance(answer, dict) and "ok" in answer else None


def type_and_message(error: BaseException) -> str:
    """The error's type and the first line of its message."""
    return f"{type(error).__name__}: {error}".splitlines()[0]


def serve(
    handlers: dict[str, Callable[[dict], dict]],
    stdin,
    stdout,
    describe_error: Callable[[BaseException], str] = type_and_message,
) -> None:
    """Answer each request with {"ok": true, **handlers[cmd](request)} until 'quit' or the end of stdin."""
    for line in stdin:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            cmd = request.get("cmd")
            if cmd == "quit":
                break
            handler = handlers.get(cmd)
            if handler is None:
                raise ValueError(f"unknown request {cmd!r}")
            answer = {"ok": True, **handler(request)}
        except Exception as error:  # noqa: BLE001 - one request failing must not end the worker: say why, go on
            traceback.print_exc(file=sys.stderr)
            answer = {"ok": False, "error": describe_error(error)}
        stdout.write(json.dumps(answer) + "\n")
        stdout.flush()
