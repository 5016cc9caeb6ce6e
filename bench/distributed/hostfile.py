"""Hostfiles and free ports for mx.distributed.

Two formats, both JSON:

- The user's hostfile (`--dist-hostfile`), in mlx.launch's format: a list of
  hosts, each {"ssh": name, "ips": [address, ...]}, or an object
  {"hosts": [...], "backend": ..., "envs": [...]}. Rank r runs on host r. The
  ring backend needs each host's IP addresses; MPI only needs the ssh names.
- The ring backend's own MLX_HOSTFILE, which the suite writes for local runs:
  a list with one entry per rank, "ip:port" (or a list of them).

Every problem with a user's hostfile is reported as one line that names the
file and the host at fault.
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import socket
from dataclasses import dataclass
from pathlib import Path

LOOPBACK = "127.0.0.1"
# Local ranks listen on ports below Linux's default ephemeral range (32_768 to 60_999):
# a port the kernel hands out for an outgoing connection cannot then collide with
# a rank that is about to listen.
PORT_RANGE = (20_000, 32_767)
EXAMPLE = '[{"ssh": "host1", "ips": ["10.0.0.1"]}, {"ssh": "host2", "ips": ["10.0.0.2"]}]'


class HostfileError(ValueError):
    """A hostfile that cannot be used; the message is one line."""


class PortError(RuntimeError):
    """No free port (or block of ports) was found."""


@dataclass(frozen=True)
class Host:
    """One host of a user's hostfile: the name to ssh into and the addresses ranks listen on."""

    ssh: str
    ips: tuple[str, ...] = ()

    @property
    def is_loopback(self) -> bool:
        """Whether this host is this machine's loopback (mlx.launch then starts it without ssh)."""
        return self.ssh == LOOPBACK and all(ipaddress.ip_address(ip).is_loopback for ip in self.ips)


@dataclass(frozen=True)
class Hostfile:
    """A validated user's hostfile (mlx.launch format)."""

    path: str
    hosts: tuple[Host, ...]
    backend: str | None = None
    envs: tuple[str, ...] = ()

    @property
    def is_local(self) -> bool:
        """Whether every host is this machine's loopback."""
        return all(host.is_loopback for host in self.hosts)

    def first(self, n_ranks: int) -> Hostfile:
        """The same hostfile cut to its first `n_ranks` hosts (rank r on host r)."""
        if n_ranks > len(self.hosts):
            raise HostfileError(f"{self.path}: {n_ranks} ranks need {n_ranks} hosts, the file lists {len(self.hosts)}")
        return Hostfile(self.path, self.hosts[:n_ranks], self.backend, self.envs)

    def write_private(self, path: Path, *envs: str) -> Path:
        """Write mlx.launch's hostfile to a new file only its owner can read, `envs` added (the group's token)."""
        data = self.to_json()
        data["envs"] += list(envs)  # mlx.launch exports them on each host
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
            out.write(json.dumps(data))
        return path

    def to_json(self) -> dict:
        """mlx.launch's format, for the file handed to mlx.launch."""
        data = {"hosts": [{"ssh": h.ssh, "ips": list(h.ips)} for h in self.hosts], "envs": list(self.envs)}
        if self.backend:
            data["backend"] = self.backend
        return data


def _load_json(text: str, source: str):
    """The JSON of a hostfile; HostfileError in one line for bad JSON, nesting too deep or a number too long."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise HostfileError(
            f"{source}: not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})"
        ) from None
    except RecursionError:
        raise HostfileError(f"{source}: nested too deeply to be a hostfile") from None
    except ValueError:  # Python refuses to read an integer of more than 4,300 digits
        raise HostfileError(f"{source}: holds a number too long to be part of a hostfile") from None


def _kind(value) -> str:
    """A JSON value's kind in words, for error messages."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null"}
    return names.get(type(value), "a number")


def _is_ring_entry(entry) -> bool:
    """Whether an entry looks like the ring's MLX_HOSTFILE ("ip:port" or a list of them)."""
    entries = entry if isinstance(entry, list) else [entry]
    return bool(entries) and all(isinstance(e, str) and ":" in e for e in entries)


def parse_hostfile(text: str, source: str = "hostfile", require_ips: bool = True) -> Hostfile:
    """Validate a user's hostfile (mlx.launch format); HostfileError with one line if it is wrong.

    require_ips: the ring backend connects ranks by IP address, so every host
    must list at least one; MPI needs only the ssh names.
    """
    data = _load_json(text, source)
    backend, envs = None, ()
    if isinstance(data, dict):
        if "hosts" not in data:
            raise HostfileError(f'{source}: an object hostfile needs a "hosts" list, like {{"hosts": {EXAMPLE}}}')
        backend, envs, data = data.get("backend") or None, data.get("envs", []), data["hosts"]
        if backend is not None and not isinstance(backend, str):
            raise HostfileError(f'{source}: "backend" must be a string, got {_kind(backend)}')
        if not isinstance(envs, list) or not all(isinstance(e, str) and "=" in e for e in envs):
            raise HostfileError(f'{source}: "envs" must be a list of "NAME=value" strings')
    if not isinstance(data, list):
        raise HostfileError(f"{source}: expected a list of hosts like {EXAMPLE}, got {_kind(data)}")
    if not data:
        raise HostfileError(f"{source}: lists no hosts")
    if all(_is_ring_entry(entry) for entry in data):
        raise HostfileError(
            f'{source}: this is a ring MLX_HOSTFILE ("ip:port" per rank); --dist-hostfile takes '
            f"mlx.launch's format: {EXAMPLE}"
        )
    hosts = []
    for number, entry in enumerate(data):
        where = f"{source}: host {number} (rank {number})"
        if not isinstance(entry, dict):
            raise HostfileError(
                f'{where} must be an object like {{"ssh": "host1", "ips": ["10.0.0.1"]}}, got {_kind(entry)}'
            )
        ssh = entry.get("ssh")
        if not isinstance(ssh, str) or not ssh.strip():
            raise HostfileError(f'{where} has no "ssh" host name')
        if ssh.strip().startswith("-"):  # ssh would read it as an option (-oProxyCommand=... runs a command)
            raise HostfileError(f'{where}: "ssh" name {ssh.strip()!r} starts with "-"; a host name cannot')
        ips = entry.get("ips", [])
        if not isinstance(ips, list) or not all(isinstance(ip, str) for ip in ips):
            raise HostfileError(f'{where}: "ips" must be a list of IP address strings, got {_kind(ips)}')
        for ip in ips:
            try:
                ipaddress.ip_address(ip)
            except ValueError:
                raise HostfileError(f"{where}: {ip!r} is not an IP address") from None
        if require_ips and not ips:
            raise HostfileError(f'{where} ({ssh}) lists no "ips": the ring backend connects ranks by IP address')
        hosts.append(Host(ssh.strip(), tuple(ips)))
    return Hostfile(source, tuple(hosts), backend, tuple(envs))


def read_hostfile(path: str | Path, require_ips: bool = True) -> Hostfile:
    """Read and validate a user's hostfile; HostfileError with one line if it is missing or wrong."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise HostfileError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise HostfileError(f"{path}: cannot read it ({error})") from None
    return parse_hostfile(text, str(path), require_ips)


def ring_hostfile(ports: list[int], ip: str = LOOPBACK) -> str:
    """The MLX_HOSTFILE text of a local ring: rank r listens on ip:ports[r]."""
    return json.dumps([[f"{ip}:{port}"] for port in ports])


def read_ring_hostfile(text: str) -> list[list[tuple[str, int]]]:
    """Parse an MLX_HOSTFILE ring list into [(ip, port), ...] per rank; HostfileError if malformed."""
    data = _load_json(text, "ring hostfile")
    if not isinstance(data, list) or len(data) < 2:
        raise HostfileError("ring hostfile: expected a list with one entry per rank (at least 2)")
    ranks = []
    for rank, entry in enumerate(data):
        addresses = []
        for item in entry if isinstance(entry, list) else [entry]:
            ip, _, port = str(item).rpartition(":")
            try:
                ipaddress.ip_address(ip)
                number = int(port)
            except ValueError:
                raise HostfileError(f"ring hostfile: rank {rank}: {item!r} is not 'ip:port'") from None
            if not 0 < number < 65_536:
                raise HostfileError(f"ring hostfile: rank {rank}: port {number} is out of range")
            addresses.append((ip, number))
        if not addresses:
            raise HostfileError(f"ring hostfile: rank {rank} has no address")
        ranks.append(addresses)
    return ranks


def _bind(host: str, port: int) -> socket.socket | None:
    """A socket bound to host:port, or None if the port is taken.

    No SO_REUSEADDR: a port with a connection still in TIME_WAIT counts as
    taken, as it would for a listener that does not set it.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        return None
    return sock


def free_ports(
    count: int, host: str = LOOPBACK, first: int | None = None, consecutive: bool = False, tries: int = 2_000
) -> list[int]:
    """`count` distinct ports nobody listens on now (a block of consecutive ports if asked).

    Candidates start at `first` and go up, or start at a random port of
    PORT_RANGE. Ports found are held open until all are found, so they are
    distinct; another process can still take one before a rank binds it,
    which the launcher handles by retrying on new ports.
    """
    low, high = PORT_RANGE
    start = first if first is not None else random.randint(low, high - count)
    held: list[socket.socket] = []
    try:
        for candidate in range(start, min(start + tries, 65_536)):
            sock = _bind(host, candidate)
            if sock is None:
                if consecutive:  # the block is broken: start a new one after this port
                    for s in held:
                        s.close()
                    held.clear()
                continue
            held.append(sock)
            if len(held) == count:
                return [s.getsockname()[1] for s in held]
    finally:
        for sock in held:
            sock.close()
    block = "consecutive " if consecutive else ""
    raise PortError(f"no {count} free {block}ports on {host} from port {start} ({tries} tried)")


def control_address(hosts: tuple[Host, ...] | None) -> str:
    """The address the parent listens on for its ranks: loopback, or the one that reaches rank 0's host."""
    if not hosts or all(host.is_loopback for host in hosts):
        return LOOPBACK
    target = next((ip for host in hosts for ip in host.ips if not ipaddress.ip_address(ip).is_loopback), None)
    if target is None:
        return LOOPBACK
    # A UDP "connect" sends nothing; it only asks the kernel which local address routes to target.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((target, 9))
        return probe.getsockname()[0]
