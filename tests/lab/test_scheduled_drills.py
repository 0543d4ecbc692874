"""Scheduled drills: cron in the config (checked at load), due times from the journal, run by the leading serve."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from drorch.config import load_config
from drorch.drill.schedule import Scheduler, due, next_after
from drorch.lab.control import Lab
from drorch.providers.estate import Estate
from drorch.serve.daemon import Round, serve
from drorch.state.backends import open_journal
from drorch.state.sqlite import SQLiteJournal
from tests.helpers import drorch_cli, estate_state, wait_for, writable_sites


def with_drills(lab: Lab, name: str, drills: list[dict[str, Any]]) -> Path:
    document = yaml.safe_load(lab.layout.config.read_text())
    document["drills"] = drills
    path = lab.layout.root / f"drorch-{name}.yaml"  # beside the lab's config: relative paths still resolve
    path.write_text(yaml.safe_dump(document))
    return path


def test_bad_schedules_are_config_errors(lab: Lab) -> None:
    cases = [({"name": "weekly", "to": "tokyo", "schedule": "61 * * * *"}, "drills.0.schedule", "not a cron"),
             ({"name": "weekly", "to": "osaka", "schedule": "0 3 * * 1"}, "drills.0.to", "unknown site 'osaka'"),
             ({"name": "weekly", "to": "seoul", "schedule": "0 3 * * 1"}, "drills.0.to", "home primary"),
             ({"name": "Weekly!", "to": "tokyo", "schedule": "0 3 * * 1"}, "drills.0.name", "")]
    for drill, field, message in cases:
        done = drorch_cli(with_drills(lab, "bad-drill", [drill]), "drills")
        assert done.returncode == 2 and field in done.stderr and message in done.stderr, done.stderr


def test_due_times_come_from_the_schedule_and_the_journal(lab: Lab, tmp_path: Path) -> None:
    config = load_config(with_drills(lab, "due", [{"name": "hourly", "to": "tokyo", "schedule": "0 * * * *"}]))
    journal = SQLiteJournal(tmp_path / "journal.db")
    hour = 3600.0
    start = (time.time() // hour) * hour + 60  # one minute past the hour
    assert next_after("0 * * * *", start) == start - 60 + hour
    assert due(config, journal, since=start, now=start + 30) == []
    assert [d.name for d in due(config, journal, since=start, now=start + hour)] == ["hourly"]
    journal.start_run("r1", "drill", start + hour, {"schedule": "hourly"})  # ran at its time
    assert due(config, journal, since=start, now=start + hour + 60) == []  # not again until the next hour


def test_the_leading_serve_runs_a_due_drill_once(home: Lab) -> None:
    # daily, at the minute that has just passed: due now (its last run was before it), then not for a day
    just_passed = time.gmtime(time.time() - 60)
    schedule = f"{just_passed.tm_min} {just_passed.tm_hour} * * *"
    config = load_config(with_drills(home, "scheduled", [
        {"name": "daily", "to": "tokyo", "load": 10, "schedule": schedule}]))
    journal = open_journal(config)
    journal.start_run("overdue0001", "drill", time.time() - 120, {"schedule": "daily"})  # its last run
    journal.finish_run("overdue0001", "succeeded", time.time() - 110, {"schedule": "daily"})
    rounds: list[Round] = []
    stop = threading.Event()
    thread = threading.Thread(target=serve, args=(config, stop, rounds.append), daemon=True)
    thread.start()
    try:
        def scheduled() -> Any:
            return next((r for r in journal.runs(10) if r.operation == "drill" and r.run_id != "overdue0001"
                         and r.summary.get("schedule") == "daily" and r.status != "running"), None)

        ran = wait_for(scheduled, timeout=60)
        assert ran.status == "succeeded", ran.summary
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert writable_sites(home) == ["seoul"]  # the drill came back
    listed = json.loads(drorch_cli(home.layout.root / "drorch-scheduled.yaml", "drills", "--output", "json").stdout)
    [entry] = listed["drills"]
    assert entry["last_run"] == ran.run_id and entry["last_status"] == "succeeded" and entry["next_run"].endswith("UTC")
    scheduled_runs = [r for r in journal.runs(50) if r.operation == "drill" and r.run_id != "overdue0001"
                      and r.summary.get("schedule") == "daily"]  # other tests' drills share this lab's journal
    assert len(scheduled_runs) == 1  # once per due time, not once per round


def test_a_scheduled_isolated_drill_runs_in_its_mode(home: Lab) -> None:
    just_passed = time.gmtime(time.time() - 60)
    config = load_config(with_drills(home, "scheduled-isolated", [
        {"name": "nightly-bubble", "to": "tokyo", "mode": "isolated",
         "schedule": f"{just_passed.tm_min} {just_passed.tm_hour} * * *"}]))
    journal = open_journal(config)
    before = estate_state(home)
    scheduler = Scheduler(config, journal, since=time.time() - 120)  # never run: due since its last time
    [run_id] = scheduler.run_due(Estate(config), None, time.time())
    record = journal.run(run_id)
    # missed: it ran, but the copy's data age was above the 1 s RPO (seen once with a chaos drill on the machine)
    assert record is not None and record.status in ("succeeded", "missed"), (record, scheduler.last_error)
    assert record.summary["mode"] == "isolated" and record.summary["schedule"] == "nightly-bubble"
    assert record.summary["measured"]["copied_bytes"] > 0
    assert estate_state(home) == before  # isolated: nothing moved, even on a schedule
    assert scheduler.run_due(Estate(config), None, time.time()) == []  # once per due time
