"""Free-port selection for lab processes.

A port chosen here can still be taken by someone else before the child binds it,
so callers start the child, wait for it to listen, and choose again on failure.
"""

from __future__ import annotations

import socket
from collections.abc import Callable


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


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
