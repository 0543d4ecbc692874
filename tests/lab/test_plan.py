"""`drorch plan` and `failover --dry-run` change nothing; the NHN playbook; an unfinished failover is not forgotten."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from drorch.config.schema import EcsCompute
from drorch.data import heartbeat
from drorch.engine.actions import dns
from drorch.lab import chaos
from drorch.lab.control import Lab
from drorch.providers.aws import ecs
from drorch.providers.openstack import compute as nova
from drorch.state.backends import open_journal
from drorch.state.journal import StepRecord
from tests.helpers import estate_state, wait_for, writable_sites

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"


def drorch(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DRORCH_CONFIG": str(lab.layout.config)}
    return subprocess.run([sys.executable, "-m", "drorch.cli", *args], capture_output=True, text=True, env=env,
                          stdin=subprocess.DEVNULL, timeout=180, check=False)


def test_plan_shows_every_concrete_change_and_changes_nothing(home: Lab) -> None:
    tokyo = home.config.site("tokyo").compute
    assert isinstance(tokyo, EcsCompute)
    ecs.scale(home.estate.aws("tokyo", "ecs"), tokyo.cluster, tokyo.service, tokyo.warm_count)  # a warm standby
    before = estate_state(home)
    runs_before = len(open_journal(home.config).runs(500))
    planned = drorch(home, "plan", "--to", "tokyo", "--output", "json")
    assert planned.returncode == 0, planned.stderr
    document = json.loads(planned.stdout)
    assert document["playbook"] == "failover-to-tokyo" and document["would_run"] is True
    assert all(guard["passed"] for guard in document["guards"])
    changes = {step["name"]: step["changes"] for step in document["steps"]}
    assert changes["fence the current primary"] == ["seoul database: read_only OFF -> ON, client sessions cut"]
    assert changes["promote tokyo"] == [
        "tokyo database: stop replicating from seoul", "tokyo database: read_only ON -> OFF (accepts writes)",
        "tokyo database: promoted only if seoul (writable now) is read-only by then, else refused even under --force: "
        "never two writable databases"]  # seoul is fenced two steps earlier
    assert changes["repoint the other replicas"] == ["nhn database: replicate from seoul -> from tokyo"]
    record = home.config.dns.record
    assert f"DNS {record} A PRIMARY: seoul -> tokyo" in changes["point DNS at tokyo"]
    assert changes["scale the Fargate service to active"] == [
        f"tokyo ECS {tokyo.cluster}/{tokyo.service}: desired {tokyo.warm_count} -> {tokyo.active_count}"]
    assert changes["replicate DynamoDB from tokyo"] == ["DynamoDB orders: replicate from seoul -> from tokyo",
                                                        "DynamoDB products-table: replicate from seoul -> from tokyo"]
    skipped = {step["name"]: step["note"] for step in document["steps"] if not step["runs"]}
    assert list(skipped) == ["measure what DynamoDB would lose", "wait until tokyo applied everything it received"]
    text = drorch(home, "failover", "--to", "tokyo", "--dry-run")
    assert text.returncode == 0 and "would run" in text.stdout and "read_only OFF -> ON" in text.stdout
    assert estate_state(home) == before
    assert len(open_journal(home.config).runs(500)) == runs_before  # a plan is not a run


def test_plan_that_a_guard_refuses_exits_3(home: Lab) -> None:
    refused = drorch(home, "plan", str(PLAYBOOKS / "failback-to-seoul.yaml"), "--output", "json")
    assert refused.returncode == 3
    document = json.loads(refused.stdout)
    assert document["would_run"] is False and document["refused_by"] == ["seoul is not the primary already"]
    assert drorch(home, "plan").returncode == 2  # neither --to nor a playbook
    assert drorch(home, "plan", "--to", "osaka").returncode == 2


def test_failover_to_nhn_starts_its_servers_and_back_by_failback(home: Lab) -> None:
    conn = home.estate.openstack("nhn")
    nova.stop(conn, "nhn-app-2", timeout=60)
    done = drorch(home, "failover", "--to", "nhn", "--yes", "--output", "json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["playbook"] == "failover-to-nhn" and document["kind"] == "switchover"
    assert document["lost_transactions"] == 0
    assert {s.name: s.status for s in nova.servers(conn, ["nhn-app-1", "nhn-app-2"])} == {
        "nhn-app-1": "ACTIVE", "nhn-app-2": "ACTIVE"}
    assert writable_sites(home) == ["nhn"] and dns.active_sites(home.estate)["PRIMARY"] == "nhn"
    back = drorch(home, "failback", "--yes", "--output", "json")
    assert back.returncode == 0, back.stderr
    assert json.loads(back.stdout)["reprotect"]["already"] is True  # a switchover left seoul a replica
    assert writable_sites(home) == ["seoul"] and dns.active_sites(home.estate)["PRIMARY"] == "seoul"


def test_an_unfinished_failover_is_offered_for_resume_not_forgotten(home: Lab) -> None:
    journal = open_journal(home.config)
    run_id = "deadbeef0001"
    journal.start_run(run_id, "failover", time.time(), {
        "playbook": "failover-to-tokyo", "source": str(PLAYBOOKS / "failover-to-tokyo.yaml"),
        "parameters": {"to": "tokyo", "from": "seoul"}, "trigger": "manual"})
    journal.record_step(run_id, StepRecord(0, "approve the failover", "succeeded", time.time(), 0.0))
    try:
        blocked = drorch(home, "failover", "--to", "tokyo", "--yes")
        assert blocked.returncode == 3 and f"drorch resume {run_id}" in blocked.stderr and "--new" in blocked.stderr
        assert writable_sites(home) == ["seoul"]
    finally:
        journal.finish_run(run_id, "failed", time.time(), {"error": "test fixture"})


def test_refuses_an_unplanned_failover_to_a_stale_nhn(home: Lab) -> None:
    """NHN stopped receiving (as when its VPN is down) while seoul kept writing; then seoul dies."""
    table = home.config.data.heartbeat.table
    heartbeat.write(home.estate.mysql("seoul"), table, "seoul", int(time.time() * 1000))
    nhn = home.admin("nhn")
    wait_for(lambda: heartbeat.newest(nhn, table) is not None, timeout=10)  # heartbeats flowed before the outage
    nhn.execute("STOP SLAVE IO_THREAD")
    try:
        for seq in range(3):  # seoul's heartbeats reach tokyo (semi-sync) but no longer nhn
            heartbeat.write(home.estate.mysql("seoul"), table, "seoul", int(time.time() * 1000) + seq)
            time.sleep(0.8)
        chaos.kill_db(home, "seoul")
        wait_for(lambda: not home.admin("tokyo").state().replica.io_running, timeout=20)  # type: ignore[union-attr]
        planned = drorch(home, "plan", "--to", "nhn", "--output", "json")
        assert planned.returncode == 3 and json.loads(planned.stdout)["refused_by"] == [
            "nhn's data is within the RPO objective"]
        refused = drorch(home, "failover", "--to", "nhn", "--yes")
        assert refused.returncode == 3, refused.stderr
        assert "nhn is 1." in refused.stderr or "nhn is 2." in refused.stderr  # seconds behind tokyo's copy
        assert "RPO objective of 1" in refused.stderr and "VPN up" in refused.stderr and "--force" in refused.stderr
        assert writable_sites(home) == [] and dns.active_sites(home.estate)["PRIMARY"] == "seoul"  # untouched
        # the freshest copy is fine to take: tokyo is not behind
        assert drorch(home, "plan", "--to", "tokyo", "--output", "json").returncode == 0
    finally:
        nhn.execute("START SLAVE IO_THREAD")
