"""The lease in the SQLite state file: for controllers on one host (the default).

Acquire and renew run in ``BEGIN IMMEDIATE`` transactions, so two processes
racing for the lease are serialised by SQLite's write lock and exactly one wins.
All holders share this host, so a holder whose process is gone (killed mid-run)
is known dead at once: the lease passes on without waiting for its expiry.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from drorch.state.lease import Grant, LeaseLost, held_elsewhere

_SCHEMA = ("CREATE TABLE IF NOT EXISTS lease (name TEXT PRIMARY KEY, holder TEXT NOT NULL, "
           "token INTEGER NOT NULL, expires_at REAL NOT NULL)")
_NOTES = "CREATE TABLE IF NOT EXISTS lease_notes (name TEXT PRIMARY KEY, value TEXT NOT NULL)"
_NAME = "controller"


class SQLiteLease:
    def __init__(self, path: Path) -> None:
        self.path = path
        with self._transaction() as db:
            db.execute(_SCHEMA)
            db.execute(_NOTES)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        finally:
            db.close()

    def _read(self, db: sqlite3.Connection) -> Grant | None:
        row = db.execute("SELECT holder, token, expires_at FROM lease WHERE name = ?", (_NAME,)).fetchone()
        return None if row is None else Grant(str(row[0]), int(row[1]), float(row[2]))

    def acquire(self, holder: str, ttl: float) -> Grant:
        with self._transaction() as db:
            now, current = time.time(), self._read(db)
            if (current is not None and current.holder != holder and current.expires_at > now
                    and not _dead_here(current.holder)):
                raise held_elsewhere(current)
            grant = Grant(holder, (current.token if current else 0) + 1, now + ttl)
            db.execute("INSERT OR REPLACE INTO lease (name, holder, token, expires_at) VALUES (?, ?, ?, ?)",
                       (_NAME, grant.holder, grant.token, grant.expires_at))
            return grant

    def renew(self, grant: Grant, ttl: float) -> Grant:
        with self._transaction() as db:
            current = self._read(db)
            if current is None or (current.holder, current.token) != (grant.holder, grant.token):
                raise LeaseLost(f"the lease now belongs to {current.holder if current else 'nobody'}")
            renewed = Grant(grant.holder, grant.token, time.time() + ttl)
            db.execute("UPDATE lease SET expires_at = ? WHERE name = ?", (renewed.expires_at, _NAME))
            return renewed

    def release(self, grant: Grant) -> None:
        with self._transaction() as db:
            db.execute("UPDATE lease SET expires_at = 0 WHERE name = ? AND holder = ? AND token = ?",
                       (_NAME, grant.holder, grant.token))

    def current(self) -> Grant | None:
        with self._transaction() as db:
            found = self._read(db)
        return found if found is not None and found.expires_at > time.time() else None


    def put_note(self, name: str, value: str) -> None:
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO lease_notes (name, value) VALUES (?, ?)", (name, value))

    def get_note(self, name: str) -> str | None:
        with self._transaction() as db:
            row = db.execute("SELECT value FROM lease_notes WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])


def _dead_here(holder: str) -> bool:
    """True when ``holder`` (host:pid[/...]) names a process on this host that no longer exists."""
    host, _, rest = holder.partition(":")
    pid_text = rest.split("/", 1)[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # it exists, as another user
        return False
    return False
