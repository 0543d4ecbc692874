"""A controller SIGKILLed in the middle of a step is resumed to the correct end state."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from drorch.engine.actions import dns
from drorch.lab.control import Lab
from drorch.state.sqlite import SQLiteJournal
from tests.helpers import paused_playbook, restore_home, stop_process, wait_for, writable_sites

SWITCHOVER = Path(__file__).resolve().parents[2] / "playbooks" / "switchover.yaml"


def test_sigkill_mid_step_then_resume(lab: Lab, tmp_path: Path) -> None:
    restore_home(lab)
    book = paused_playbook(SWITCHOVER, "wait until the target applied everything", tmp_path, "slow-switchover")
    env = {**os.environ, "DRORCH_CONFIG": str(lab.layout.config)}
    journal = SQLiteJournal(lab.config.resolve_path(lab.config.state.path))

    def drorch(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "drorch.cli", *args], capture_output=True, text=True,
                              env=env, timeout=120, check=False, stdin=subprocess.DEVNULL)

    proc = subprocess.Popen([sys.executable, "-m", "drorch.cli", "playbook", "run", str(book), "-p", "to=tokyo",
                             "--yes"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def killed_mid_sleep() -> str | None:
            for run in journal.runs(5):
                if run.operation == "playbook:slow-switchover" and run.status == "running" and any(
                        s.name == "a long step" and s.status == "running" for s in run.steps):
                    return run.run_id
            return None

        run_id = wait_for(killed_mid_sleep, timeout=60)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        stop_process(proc)
    try:
        assert writable_sites(lab) == []  # seoul fenced, nothing promoted yet: an outage, but no split-brain
        again = drorch("playbook", "run", str(book), "-p", "to=tokyo", "--yes")
        assert again.returncode == 3 and f"drorch resume {run_id}" in again.stderr
        book.write_text(book.read_text().replace("seconds: 60", "seconds: 0"))  # the long step finishes now
        resumed = drorch("resume", run_id, "--yes", "--output", "json")
        assert resumed.returncode == 0, resumed.stderr
        result = json.loads(resumed.stdout)
        assert result["status"] == "succeeded"
        statuses = {s["name"]: s["status"] for s in result["steps"]}
        assert statuses["fence the current primary"] == "skipped"  # done before the crash
        assert statuses["a long step"] == "succeeded" and statuses["promote the target"] == "succeeded"
        assert writable_sites(lab) == ["tokyo"] and dns.active_sites(lab.estate)["PRIMARY"] == "tokyo"
        old = journal.run(run_id)
        assert old is not None and old.status == "resumed" and old.summary["resumed_by"] == result["run_id"]
        assert drorch("resume", run_id).returncode == 2  # nothing left to resume
    finally:
        restore_home(lab)
