"""Background processes of the lab, tracked by PID files.

Each PID file records the exact command line, so ``lab down`` only ever signals
a process that is still the one the lab started (PIDs get reused) and leaves
nothing behind.

A process may run inside a network namespace (the NHN site of a ``--vpn`` lab):
it is started through ``ip netns exec NS``, which execs it in place, so the PID
recorded is the process's own and the command line recorded is its own argv; the
PID file also names the namespace.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

IP = "ip"


@dataclass(frozen=True)
class Tracked:
    name: str
    pid: int
    argv: tuple[str, ...]
    netns: str | None = None  # the network namespace it runs in (None: the host's)

    @property
    def launcher(self) -> tuple[str, ...]:
        """What runs before the process itself: ``ip netns exec NS`` (it execs the process in place)."""
        return (IP, "netns", "exec", self.netns) if self.netns else ()


def _pid_file(run_dir: Path, name: str) -> Path:
    return run_dir / f"{name}.pid"


def start(run_dir: Path, log_dir: Path, name: str, argv: list[str], env: dict[str, str] | None = None,
          netns: str | None = None) -> Tracked:
    """Start ``argv`` detached (own session), log to ``log_dir/name.log``, record its PID file.

    With ``netns`` the process runs in that network namespace (``ip netns exec``).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / f"{name}.log", "ab") as log:
        proc = subprocess.Popen(
            [*Tracked(name, 0, (), netns).launcher, *argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
    tracked = Tracked(name, proc.pid, tuple(argv), netns)
    record: dict[str, object] = {"pid": proc.pid, "argv": argv}
    if netns:
        record["netns"] = netns
    _pid_file(run_dir, name).write_text(json.dumps(record))
    return tracked


def read(run_dir: Path, name: str) -> Tracked | None:
    try:
        data = json.loads(_pid_file(run_dir, name).read_text())
    except (OSError, ValueError):
        return None
    return Tracked(name, int(data["pid"]), tuple(data["argv"]), data.get("netns"))


def tracked_all(run_dir: Path) -> list[Tracked]:
    found = [read(run_dir, path.stem) for path in sorted(run_dir.glob("*.pid"))]
    return [item for item in found if item is not None]


def is_alive(item: Tracked) -> bool:
    """True when the PID runs the recorded command line (and is not a zombie).

    A namespaced process counts from the moment it was launched: for a few
    milliseconds its PID still shows ``ip netns exec NS`` before the argv.
    """
    try:
        cmdline = Path(f"/proc/{item.pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{item.pid}/stat").read_text()
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        return False
    if not cmdline:  # a process still inside exec() shows no arguments for a moment
        return True
    shown = tuple(part.decode() for part in cmdline.split(b"\0") if part)
    return shown == item.argv or (item.netns is not None and shown == (*item.launcher, *item.argv))


def stop(run_dir: Path, item: Tracked, timeout: float = 10.0) -> bool:
    """SIGTERM, wait up to ``timeout``, then SIGKILL. Returns whether it was running."""
    was_alive = is_alive(item)
    if was_alive:
        _signal_and_wait(item, timeout)
    _pid_file(run_dir, item.name).unlink(missing_ok=True)
    return was_alive


def kill(item: Tracked) -> None:
    """SIGKILL at once: the lab's way of simulating a crash."""
    if is_alive(item):
        _signal_and_wait(item, 0.0)


def _signal_and_wait(item: Tracked, timeout: float) -> None:
    sig = signal.SIGTERM if timeout > 0 else signal.SIGKILL
    with contextlib.suppress(ProcessLookupError):
        os.kill(item.pid, sig)
    deadline = time.monotonic() + timeout
    while is_alive(item) and time.monotonic() < deadline:
        _reap(item.pid)
        time.sleep(0.05)
    if is_alive(item):
        with contextlib.suppress(ProcessLookupError):
            os.kill(item.pid, signal.SIGKILL)
        kill_deadline = time.monotonic() + 5.0
        while is_alive(item) and time.monotonic() < kill_deadline:
            _reap(item.pid)
            time.sleep(0.02)
    _reap(item.pid)


def _reap(pid: int) -> None:
    """Collect the exit status when the process is our own child (no zombie left)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)

