"""Running the estate's own commands for a drill: its client, its verifier, its fault and heal hooks.

They run without a shell, in the config file's folder, in a session of their own
so that the whole process group is stopped by its PID. Their output goes to a file
in the drill folder, never to drorch's output, journal or errors: a command line
or its output may hold a secret, so errors name the config field and the program
only.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from drorch.errors import InvalidInput, OperationFailed


@dataclass(frozen=True)
class Command:
    """A configured command line: ``field`` is where it is in the config, for every message about it."""

    field: str
    argv: tuple[str, ...]
    cwd: Path
    output: Path  # stdout (of background commands) and stderr are appended here

    @property
    def program(self) -> str:
        return Path(self.argv[0]).name

    def filled(self, **values: str) -> Command:
        return Command(self.field, tuple(arg.format(**values) for arg in self.argv), self.cwd, self.output)

    def check(self, source: Path | None) -> None:
        """InvalidInput (before the drill changes anything) when the program cannot be found or run."""
        program = self.argv[0]
        if os.sep in program:
            path = Path(program) if Path(program).is_absolute() else self.cwd / program
            runnable = path.is_file() and os.access(path, os.X_OK)
        else:
            runnable = shutil.which(program) is not None
        if not runnable:
            raise InvalidInput(f"{source or 'the config'}: {self.field}: program '{self.program}' is not an "
                               f"executable on PATH or relative to {self.cwd}; fix the command's first element")

    def run(self, timeout: float) -> str:
        """Run to the end; its standard output. OperationFailed when it fails or outlives ``timeout``."""
        self.output.parent.mkdir(parents=True, exist_ok=True)
        with self.output.open("ab") as errors:
            process = subprocess.Popen(self.argv, cwd=self.cwd, stdout=subprocess.PIPE, stderr=errors,
                                       stdin=subprocess.DEVNULL, start_new_session=True)
            try:
                out, _ = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                stop_group(process, 0.0)
                raise OperationFailed(f"{self.field} ({self.program}) was still running after {timeout:g} s and "
                                      f"was stopped; its errors are in {self.output}") from None
        if process.returncode != 0:
            raise OperationFailed(f"{self.field} ({self.program}) exited {process.returncode}; its errors are in "
                                  f"{self.output}")
        return out.decode("utf-8", "replace")

    def start(self) -> subprocess.Popen[bytes]:
        """Start in the background (stop it with ``stop_group``)."""
        self.output.parent.mkdir(parents=True, exist_ok=True)
        with self.output.open("ab") as sink:
            return subprocess.Popen(self.argv, cwd=self.cwd, stdout=sink, stderr=sink, stdin=subprocess.DEVNULL,
                                    start_new_session=True)


def stop_group(process: subprocess.Popen[bytes], grace: float) -> int:
    """SIGTERM the process's group, SIGKILL it after ``grace`` seconds; its exit status."""
    if process.poll() is None:
        _signal_group(process.pid, signal.SIGTERM)
        try:
            return process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    _signal_group(process.pid, signal.SIGKILL)  # also what the leader left behind in its group
    return process.wait()


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)
