"""`drorch failover --playbook playbooks/failover.yaml`: planned and unplanned, with the CLI contract."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from drorch.engine.actions import dns
from drorch.lab import chaos
from drorch.lab.control import Lab
from tests.helpers import wait_for, writable_sites

FAILOVER = Path(__file__).resolve().parents[2] / "playbooks" / "failover.yaml"


def _failover(lab: Lab, to: str) -> tuple[int, dict[str, Any]]:
    env = {**os.environ, "DRORCH_CONFIG": str(lab.layout.config)}
    done = subprocess.run([sys.executable, "-m", "drorch.cli", "failover", "--to", to, "--yes", "--playbook",
                           str(FAILOVER), "--output", "json"], capture_output=True, text=True, env=env,
                          timeout=180, check=False, stdin=subprocess.DEVNULL)
    return done.returncode, json.loads(done.stdout)


def test_planned_failover_playbook_proves_zero_loss(home: Lab) -> None:
    code, result = _failover(home, "tokyo")
    assert code == 0, result
    assert result["status"] == "succeeded" and result["from"] == "seoul" and result["to"] == "tokyo"
    assert result["rpo_seconds"] == 0.0 and result["lost_transactions"] == 0
    assert isinstance(result["rto_seconds"], float) and result["rto_seconds"] > 0
    steps = {s["name"]: s["status"] for s in result["steps"]}
    assert steps["fence the current primary"] == "succeeded"
    assert steps["wait until the target applied everything it received"] == "skipped"
    assert writable_sites(home) == ["tokyo"]


def test_unplanned_failover_playbook_after_seoul_dies(home: Lab) -> None:
    chaos.kill_db(home, "seoul")
    chaos.stop_app(home, "seoul")

    def replicas_lost_seoul() -> bool:
        replica = home.admin("tokyo").state().replica
        return replica is not None and not replica.io_running

    wait_for(replicas_lost_seoul, timeout=20)
    code, result = _failover(home, "tokyo")
    assert code == 0, result
    steps = {s["name"]: s["status"] for s in result["steps"]}
    assert steps["fence the current primary"] == "skipped"
    assert steps["rejoin the old primary as a replica"] == "skipped"
    assert steps["wait until the target applied everything it received"] == "succeeded"
    assert result["rpo_seconds"] is None  # the dead primary cannot be compared
    assert writable_sites(home) == ["tokyo"] and dns.active_sites(home.estate)["PRIMARY"] == "tokyo"
    nhn = home.admin("nhn").state().replica
    assert nhn is not None and nhn.source_port == home.state.sites["tokyo"].mysql_port
