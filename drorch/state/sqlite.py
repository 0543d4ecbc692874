"""The SQLite journal: one file on the controller host, WAL mode, created 0600.

A connection per operation keeps it safe from any thread; each write is its own
transaction, committed before the step it describes starts or after it ends, so
a controller killed at any point leaves a journal that says exactly how far it got.
"""

from __future__ import annotations

import json
from typing import Any

from drorch.state.journal import RunRecord, StepRecord
from drorch.state.sqlite_file import StateFile

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
  run_id TEXT PRIMARY KEY, operation TEXT NOT NULL, status TEXT NOT NULL,
  started_at REAL NOT NULL, finished_at REAL, summary TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS steps (
  run_id TEXT NOT NULL REFERENCES runs(run_id), idx INTEGER NOT NULL, name TEXT NOT NULL, status TEXT NOT NULL,
  started_at REAL NOT NULL, duration REAL, detail TEXT NOT NULL DEFAULT '{}', error TEXT,
  PRIMARY KEY (run_id, idx));
CREATE TABLE IF NOT EXISTS status (
  id INTEGER PRIMARY KEY CHECK (id = 1), at REAL NOT NULL, document TEXT NOT NULL);
"""


class SQLiteJournal(StateFile):
    SCHEMA = _SCHEMA

    def start_run(self, run_id: str, operation: str, started_at: float, summary: dict[str, Any]) -> None:
        with self._db() as db:
            db.execute("INSERT INTO runs (run_id, operation, status, started_at, summary) VALUES (?, ?, ?, ?, ?)",
                       (run_id, operation, "running", started_at, json.dumps(summary, default=str)))

    def record_step(self, run_id: str, step: StepRecord) -> None:
        with self._db() as db:
            db.execute(
                "INSERT OR REPLACE INTO steps (run_id, idx, name, status, started_at, duration, detail, error) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, step.index, step.name, step.status, step.started_at, step.duration_seconds,
                 json.dumps(step.detail, default=str), step.error),
            )

    def finish_run(self, run_id: str, status: str, finished_at: float, summary: dict[str, Any]) -> None:
        with self._db() as db:
            db.execute("UPDATE runs SET status = ?, finished_at = ?, summary = ? WHERE run_id = ?",
                       (status, finished_at, json.dumps(summary, default=str), run_id))

    def runs(self, limit: int = 20) -> list[RunRecord]:
        with self._db() as db:
            rows = db.execute("SELECT run_id FROM runs ORDER BY started_at DESC LIMIT ?", (limit,)).fetchall()
        found = [self.run(row[0]) for row in rows]
        return [r for r in found if r is not None]

    def run(self, run_id: str) -> RunRecord | None:
        with self._db() as db:
            row = db.execute("SELECT run_id, operation, status, started_at, finished_at, summary FROM runs "
                             "WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                return None
            steps = db.execute("SELECT idx, name, status, started_at, duration, detail, error FROM steps "
                               "WHERE run_id = ? ORDER BY idx", (run_id,)).fetchall()
        return RunRecord(
            row[0], row[1], row[2], row[3], row[4], json.loads(row[5]),
            tuple(StepRecord(s[0], s[1], s[2], s[3], s[4], json.loads(s[5]), s[6]) for s in steps),
        )

    def publish_status(self, at: float, document: dict[str, Any]) -> None:
        with self._db() as db:
            db.execute("INSERT OR REPLACE INTO status (id, at, document) VALUES (1, ?, ?)",
                       (at, json.dumps(document, default=str)))

    def latest_status(self) -> tuple[float, dict[str, Any]] | None:
        with self._db() as db:
            row = db.execute("SELECT at, document FROM status WHERE id = 1").fetchone()
        return None if row is None else (float(row[0]), json.loads(row[1]))

    def withdraw_status(self) -> None:
        """Forget the published status: its publisher stopped, so nobody keeps it current."""
        with self._db() as db:
            db.execute("DELETE FROM status")
