"""The controller's SQLite state file: created 0600, in WAL mode, one short connection per operation.

The journal and the replication checkpoints share the file and this way of
opening it; each brings its own tables (``SCHEMA``).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from drorch.errors import InvalidInput


class StateFile:
    SCHEMA = ""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError as exc:
            raise InvalidInput(f"state.path: cannot create {path} ({exc.strerror}); choose a writable path") from None
        with self._db() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(self.SCHEMA)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """A connection whose changes commit when the block ends (and roll back if it raises)."""
        db = sqlite3.connect(self.path, timeout=10)
        try:
            with db:
                yield db
        finally:
            db.close()
