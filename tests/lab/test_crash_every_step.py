"""A controller SIGKILLed at every step boundary of `failover-to-tokyo` is resumed to the correct end state.

For each top-level step k, a copy of the shipped playbook pauses right before step k; the CLI
run is killed during that pause (steps before k done, k not started: the worst moments are
right after the fence and right after the promotion), `drorch resume` finishes the run, and
the invariants are checked: exactly one writable database, tokyo; DNS on tokyo; the others
replicating from it; the journal saying the old run was resumed by a succeeded one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from drorch.engine.actions import dns
from drorch.lab.control import Lab
from drorch.state.backends import open_journal
from tests.helpers import paused_playbook, stop_process, wait_for, writable_sites

PLAYBOOK = Path(__file__).resolve().parents[2] / "playbooks" / "failover-to-tokyo.yaml"
STEPS = [step["name"] for step in yaml.safe_load(PLAYBOOK.read_text())["steps"]]
PAUSE = "crash here"


@pytest.mark.parametrize("index", range(1, len(STEPS)), ids=[f"before {name}" for name in STEPS[1:]])
def test_killed_before_a_step_then_resumed(home: Lab, tmp_path: Path, index: int) -> None:
    book = paused_playbook(PLAYBOOK, STEPS[index], tmp_path, f"crash-before-{index}", pause=PAUSE)
    env = {**os.environ, "DRORCH_CONFIG": str(home.layout.config)}
    journal = open_journal(home.config)
    controller = subprocess.Popen([sys.executable, "-m", "drorch.cli", "failover", "--to", "tokyo", "--yes",
                                   "--playbook", str(book)], env=env, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def pausing() -> str | None:
            return next((run.run_id for run in journal.runs(5) if run.status == "running"
                         and any(s.name == PAUSE and s.status == "running" for s in run.steps)), None)

        run_id = wait_for(pausing, timeout=60)
        controller.send_signal(signal.SIGKILL)
        controller.wait(timeout=10)
    finally:
        stop_process(controller)
    assert len(writable_sites(home)) <= 1  # whatever the moment of the crash: never two writable primaries
    book.write_text(book.read_text().replace("seconds: 60", "seconds: 0"))
    resumed = subprocess.run([sys.executable, "-m", "drorch.cli", "resume", run_id, "--yes", "--output", "json"],
                             env=env, capture_output=True, text=True, timeout=180, check=False,
                             stdin=subprocess.DEVNULL)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["status"] == "succeeded"
    assert writable_sites(home) == ["tokyo"] and dns.active_sites(home.estate)["PRIMARY"] == "tokyo"
    tokyo_port = home.state.sites["tokyo"].mysql_port
    for site in ("seoul", "nhn"):
        def follows_tokyo(name: str = site) -> bool:
            replica = home.admin(name).state().replica
            return replica is not None and replica.source_port == tokyo_port and replica.io_running
        wait_for(follows_tokyo, timeout=20)
    old = journal.run(run_id)
    assert old is not None and old.status == "resumed"
