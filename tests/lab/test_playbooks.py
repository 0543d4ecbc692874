"""Playbooks on the lab: switchover there and back, dry runs and refusals that change nothing, rollback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from drorch.engine.actions import dns
from drorch.engine.executor import Options, execute
from drorch.engine.playbook.loader import load_playbook
from drorch.errors import RefusedForSafety
from drorch.lab.control import Lab
from drorch.state.sqlite import SQLiteJournal
from tests.helpers import estate_state, writable_sites

SWITCHOVER = Path(__file__).resolve().parents[2] / "playbooks" / "switchover.yaml"
YES = Options(approvals=frozenset({"*"}))


def test_switchover_playbook_there_and_back(home: Lab, tmp_path: Path) -> None:
    journal = SQLiteJournal(tmp_path / "journal.db")
    there = execute(load_playbook(SWITCHOVER), home.estate, {"to": "tokyo"}, YES, journal)
    assert there.status == "succeeded", there.error
    assert writable_sites(home) == ["tokyo"] and dns.active_sites(home.estate)["PRIMARY"] == "tokyo"
    tokyo_port = home.state.sites["tokyo"].mysql_port
    for site in ("seoul", "nhn"):
        replica = home.admin(site).state().replica
        assert replica is not None and replica.source_port == tokyo_port
    record = journal.run(str(there.run_id))
    assert record is not None and record.status == "succeeded"
    assert {s.name for s in record.steps} >= {"repoint the other replicas", "rejoin the old primary as a replica"}
    back = execute(load_playbook(SWITCHOVER), home.estate, {"to": "seoul"}, YES, journal)
    assert back.status == "succeeded", back.error
    assert writable_sites(home) == ["seoul"]


def test_dry_run_and_refusals_change_nothing(home: Lab, tmp_path: Path) -> None:
    before = estate_state(home)
    dry = execute(load_playbook(SWITCHOVER), home.estate, {"to": "tokyo"}, Options(dry_run=True))
    assert dry.status == "dry-run" and dry.run_id is None
    steps = dry.planned["steps"]
    assert [p["action"] for p in steps][:3] == ["control.approval", "compute.scale", "mysql.fence"]
    assert steps[2]["changes"] == ["seoul database: read_only OFF -> ON, client sessions cut"]
    with pytest.raises(RefusedForSafety, match="guard 'target differs from the current primary'"):
        execute(load_playbook(SWITCHOVER), home.estate, {"to": "seoul"}, YES)
    refused = execute(load_playbook(SWITCHOVER), home.estate, {"to": "tokyo"}, Options())  # nobody to approve
    assert refused.status == "failed" and "approval needed" in str(refused.error)
    assert estate_state(home) == before


def test_cli_param_errors_exit_2_and_guard_refusal_exit_3(home: Lab) -> None:
    env = {**os.environ, "DRORCH_CONFIG": str(home.layout.config)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "drorch.cli", "playbook", "run", str(SWITCHOVER), *args],
                              capture_output=True, text=True, env=env, timeout=120, check=False,
                              stdin=subprocess.DEVNULL)

    before = estate_state(home)
    assert run("-p", "to=osaka", "--yes").returncode == 2
    assert run("-p", "tokyo", "--yes").returncode == 2
    assert run("--yes").returncode == 2  # `to` is required
    assert run("-p", "to=tokyo", "-p", "speed=fast").returncode == 2
    refused = run("-p", "to=seoul", "--yes")
    assert refused.returncode == 3 and "guard" in refused.stderr
    dry = run("-p", "to=tokyo", "--dry-run", "--output", "json")
    assert dry.returncode == 0 and json.loads(dry.stdout)["would_run"] is True
    assert estate_state(home) == before


def test_failed_step_rolls_back_the_fence(home: Lab, tmp_path: Path) -> None:
    book = tmp_path / "fence-then-veto.yaml"
    book.write_text("""\
name: fence-then-veto
parameters:
  from: {default: "{{ primary }}"}
steps:
  - name: fence
    action: mysql.fence
    with: {site: "{{ from }}"}
  - name: pre-promotion hook
    action: control.hook
    with: {command: ["sh", "-c", "echo no >&2; exit 7"]}
    on_error: rollback
rollback:
  - name: unfence
    action: mysql.unfence
    with: {site: "{{ from }}"}
""")
    result = execute(load_playbook(book), home.estate, {}, YES)
    assert result.status == "rolled_back"
    assert "vetoed the run (exit 7)" in str(result.error)
    assert [s.name for s in result.steps] == ["fence", "pre-promotion hook", "rollback: unfence"]
    assert writable_sites(home) == ["seoul"]
