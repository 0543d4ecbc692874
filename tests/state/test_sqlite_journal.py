"""The SQLite journal keeps every run and step, survives reopening, and is private to its owner."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from drorch.errors import InvalidInput
from drorch.state.journal import StepRecord
from drorch.state.sqlite import SQLiteJournal


def test_runs_and_steps_round_trip_across_reopening(tmp_path: Path) -> None:
    path = tmp_path / "state" / "drorch.db"
    journal = SQLiteJournal(path)
    journal.start_run("r1", "failover", 100.0, {"from": "seoul", "to": "tokyo"})
    journal.record_step("r1", StepRecord(0, "fence seoul database", "running", 100.5))
    journal.record_step("r1", StepRecord(0, "fence seoul database", "succeeded", 100.5, 0.2, {"binlog_gtid": "0-1-9"}))
    journal.record_step("r1", StepRecord(1, "promote tokyo database", "running", 100.8))
    # a controller killed here leaves a run that says exactly where it stopped
    reopened = SQLiteJournal(path).run("r1")
    assert reopened is not None and reopened.status == "running"
    assert [(s.name, s.status) for s in reopened.steps] == [
        ("fence seoul database", "succeeded"), ("promote tokyo database", "running")]
    assert reopened.steps[0].detail == {"binlog_gtid": "0-1-9"} and reopened.steps[0].duration_seconds == 0.2
    journal.finish_run("r1", "failed", 101.0, {"error": "boom"})
    journal.start_run("r2", "failover", 200.0, {})
    assert [r.run_id for r in journal.runs()] == ["r2", "r1"]
    finished = journal.run("r1")
    assert finished is not None and finished.status == "failed" and finished.summary == {"error": "boom"}
    assert journal.run("missing") is None
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_unusable_state_path_is_invalid_input(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(InvalidInput, match=r"state\.path"):
        SQLiteJournal(blocker / "drorch.db")
