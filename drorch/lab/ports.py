"""Addresses and ports for lab processes.

Ports are drawn at random from below the kernel's ephemeral range, so the
source port of some client connection can never hold a lab server's port, and
each lab takes its own /24 inside 127.0.0.0/8, so labs running side by side
(parallel test workers) never compete for the same address and port — not even
when one of them restarts a process it stopped.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Callable
from pathlib import Path

_LOWEST_PORT = 10000
_SUBNETS = range(10, 250)


def _ephemeral_floor() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str = "127.0.0.1", also_on: tuple[str, ...] = ()) -> int:
    """A TCP port free right now on ``host`` (and on every address in ``also_on``)."""
    ceiling = _ephemeral_floor()
    for _ in range(200):
        port = random.randrange(_LOWEST_PORT, ceiling)
        if all(_bindable(addr, port) for addr in (host, *also_on)):
            return port
    raise OSError(f"no free TCP port below {ceiling} on {host}")


def _listening_addresses() -> set[str]:
    """IPv4 addresses with a listening TCP socket, from /proc/net/tcp."""
    found: set[str] = set()
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return found
    for line in lines:
        fields = line.split()
        if len(fields) > 3 and fields[3] == "0A":  # LISTEN
            hex_ip = fields[1].split(":")[0]
            found.add(socket.inet_ntoa(bytes.fromhex(hex_ip)[::-1]))
    return found


def free_lab_subnet() -> str:
    """A prefix ``127.X.Y`` whose addresses no listening socket uses."""
    busy = {address.rsplit(".", 1)[0] for address in _listening_addresses()}
    candidates = [f"127.{a}.{b}" for a in _SUBNETS for b in range(256)]
    random.shuffle(candidates)
    for prefix in candidates[:500]:
        if prefix not in busy:
            return prefix
    raise OSError("no free 127.x.y.0/24 for a lab")


def wait_listening(host: str, port: int, timeout: float, still_starting: Callable[[], bool] = lambda: True) -> bool:
    """Poll until something accepts TCP connections on host:port.

    Gives up when the timeout passes or ``still_starting`` says the server process is gone.
    """
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and still_starting():
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False
