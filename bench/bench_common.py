"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from drorch.lab import lifecycle
from drorch.lab.control import Lab, open_lab


def code_version() -> str:
    """The commit measured, with ``-dirty`` when the working tree differs from it."""

    def git(*argv: str) -> str:
        return subprocess.run(["git", *argv], capture_output=True, text=True, check=False,
                              cwd=Path(__file__).parent).stdout.strip()

    dirty = git("status", "--porcelain", "--untracked-files=no")
    return git("rev-parse", "--short", "HEAD") + ("-dirty" if dirty else "")


@contextmanager
def temporary_lab(prefix: str) -> Iterator[tuple[Lab, Path]]:
    """A lab in a fresh temporary folder (``lab/`` inside it, the folder is yours too); stopped and removed after."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        root = Path(tmp) / "lab"
        lifecycle.up(root)
        try:
            yield open_lab(root), Path(tmp)
        finally:
            lifecycle.down(root)  # every lab process by its PID, scratch servers included


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


ROWS_PER_STATEMENT = 10_000
ROW_BYTES = 992


def load_rows(lab: Any, megabytes: int, read_timeout: float = 300) -> int:
    """About ``megabytes`` of rows into seoul's ``shop.bench_blob`` (replicated everywhere); the row count.

    MariaDB's sequence engine (``seq_1_to_N``) generates the rows server-side, so loading costs no round trips.
    """
    seoul = lab.admin("seoul")
    seoul.execute("CREATE TABLE IF NOT EXISTS shop.bench_blob (id INT PRIMARY KEY, payload TEXT NOT NULL) "
                  "ENGINE=InnoDB")
    rows = megabytes * 1_000_000 // ROW_BYTES
    for first in range(1, rows + 1, ROWS_PER_STATEMENT):
        last = min(rows, first + ROWS_PER_STATEMENT - 1)
        seoul.query(f"INSERT INTO shop.bench_blob SELECT seq, REPEAT(MD5(seq), 31) FROM shop.seq_{first}_to_{last}",
                    read_timeout=read_timeout)
    return rows
