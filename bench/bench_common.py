"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path


def code_version() -> str:
    """The commit measured, with ``-dirty`` when the working tree differs from it."""

    def git(*argv: str) -> str:
        return subprocess.run(["git", *argv], capture_output=True, text=True, check=False,
                              cwd=Path(__file__).parent).stdout.strip()

    dirty = git("status", "--porcelain", "--untracked-files=no")
    return git("rev-parse", "--short", "HEAD") + ("-dirty" if dirty else "")


def stop_process(process: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM a process we started (by its PID), SIGKILL it after ``grace`` seconds."""
    if process.poll() is not None:
        return
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(5)
