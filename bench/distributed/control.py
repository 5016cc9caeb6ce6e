"""The control messages between pytest (the parent) and the ranks.

One JSON object per line over a TCP connection each rank opens to the parent
(127.0.0.1 for local runs). The collective itself never goes through here: it
runs on MLX's own backend. Control traffic is a few dozen bytes per round, so
its round trip (measured and saved as `control_rtt_s`) is small next to a
round of ~20 ms.

Rank -> parent, while it starts: {"op": "hello", "pid", "rank", "host", "token"} on connecting
(a wrong token: the parent closes the connection), then {"op": "ready", "rank", "size", ...}
once mx.distributed is up, or {"op": "error", "kind", "message"} when anything fails.

Then the rank serves the worker protocol (bench.engine.protocol), as a worker
does on its stdin: the parent sends each rank a request {"cmd": ...}, and each
answers {"ok": true, ...} or {"ok": false, "error": one line}:
  run K      -> steps, elapsed_s (K steps, each ending in mx.eval: barrier "step")
  profile K  -> steps, compute_s and collective_s (K steps with an extra barrier)
  reset      -> (weights back to the shared start w0)
  weights    -> w (the rank's weights as a list of floats)
  ping       -> (measures the control round trip)
  quit       -> (the rank exits 0)
"""

from __future__ import annotations

import json
import socket

# The group's token reaches a rank in this environment variable (or the hostfile's "envs", which
# mlx.launch exports on each host), never on its command line, which every local user can read.
TOKEN_ENV = "MLX_SGD_BENCH_GROUP_TOKEN"
# What a rank says when its listening port was taken (the parent retries on other ports).
ADDRESS_IN_USE = "address_in_use"
# MLX's ring backend reports a taken port as "Couldn't bind socket (error: 98)";
# 48 is EADDRINUSE on macOS.
_ADDRESS_IN_USE_MARKERS = ("error: 98)", "error: 48)", "address already in use")


class ProtocolError(RuntimeError):
    """A control message that cannot be read."""


def encode(op: str, **fields) -> bytes:
    """One message as a JSON line."""
    return (json.dumps({"op": op, **fields}, separators=(",", ":")) + "\n").encode()


def decode(line: bytes) -> dict:
    """A JSON line back into a rank's start-up message dict; ProtocolError if it is not one."""
    try:
        message = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ProtocolError(f"unreadable control message {line[:80]!r}: {error}") from None
    if not isinstance(message, dict) or "op" not in message:
        raise ProtocolError(f"control message without an op: {line[:80]!r}")
    return message


def is_address_in_use(error: BaseException) -> bool:
    """Whether an exception from mx.distributed.init says its port was taken."""
    text = str(error).lower()
    return any(marker in text for marker in _ADDRESS_IN_USE_MARKERS)


def error_line(error: BaseException) -> str:
    """An error as the one line a rank sends: its type and message, squeezed and cut."""
    return one_line(f"{type(error).__name__}: {error}")


def one_line(text: str, limit: int = 300) -> str:
    """Text squeezed onto one line and cut to `limit` characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def shard_bounds(n_examples: int, n_ranks: int, rank: int) -> tuple[int, int]:
    """Rows [start, stop) of the examples that `rank` holds: contiguous, sizes differ by at most 1."""
    base, extra = divmod(n_examples, n_ranks)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


class Channel:
    """The rank's end of the control connection: blocking, line by line."""

    def __init__(self, address: str, timeout_s: float):
        host, _, port = address.rpartition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout_s)
        self.sock.settimeout(None)  # commands may be far apart (the parent computes references)
        # Small messages each way: without TCP_NODELAY, Nagle's algorithm can hold a
        # "done" back for tens of milliseconds and that would land inside the timer.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = self.sock.makefile("rb")
        self.writer = self.sock.makefile("w", encoding="utf-8")  # answers; flushed after each (protocol.serve)

    def send(self, op: str, **fields) -> None:
        """Send one message to the parent."""
        self.sock.sendall(encode(op, **fields))

    def close(self) -> None:
        """Close the connection (the parent sees end of file)."""
        try:
            self.reader.close()
            self.writer.close()
            self.sock.close()
        except OSError:
            pass
