"""`drorch failback` on the lab: reprotect the returning old primary, then switch back, or refuse."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from drorch.data import heartbeat
from drorch.engine.actions import dns
from drorch.engine.failover import failover
from drorch.lab import chaos
from drorch.lab.control import Lab
from drorch.state.backends import open_journal
from tests.helpers import wait_for, writable_sites


def drorch(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "drorch.cli", *args, "--config", str(lab.layout.config)],
                          capture_output=True, text=True, timeout=180, check=False)


def source_port(lab: Lab, site: str) -> int | None:
    replica = lab.admin(site).state().replica
    return replica.source_port if replica is not None and replica.io_running else None


def fail_over_after_seoul_dies(lab: Lab) -> str:
    """Heartbeats on seoul, seoul's database killed, unplanned failover to tokyo; seoul restarted (read-only)."""
    table = lab.config.data.heartbeat.table
    for seq in range(3):
        heartbeat.write(lab.estate.mysql("seoul"), table, "seoul", int(time.time() * 1000) + seq)
    chaos.kill_db(lab, "seoul")
    wait_for(lambda: source_port(lab, "tokyo") is None, timeout=20)  # the replicas notice the loss
    result = failover(lab.estate, "tokyo", journal=open_journal(lab.config))
    assert result.status == "succeeded" and result.kind == "failover" and result.rpo_seconds is None
    chaos.start_db(lab, "seoul")
    assert writable_sites(lab) == ["tokyo"]
    return result.run_id


def test_failback_reprotects_seoul_measures_the_rpo_and_switches_back(home: Lab) -> None:
    failover_run = fail_over_after_seoul_dies(home)
    done = drorch(home, "failback", "--yes", "--output", "json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["kind"] == "switchover" and document["to"] == "seoul" and document["lost_transactions"] == 0
    # semi-sync: every heartbeat acknowledged on seoul reached tokyo, so the failover lost nothing
    assert document["reprotect"]["failover_rpo_seconds"] == 0.0
    assert document["reprotect"]["completed_failover_run"] == failover_run
    record = open_journal(home.config).run(failover_run)
    assert record is not None and record.summary["rpo_seconds"] == 0.0 and "reprotected" in record.summary[
        "rpo_measured"]
    assert writable_sites(home) == ["seoul"] and dns.active_sites(home.estate)["PRIMARY"] == "seoul"
    seoul_port = home.state.sites["seoul"].mysql_port
    for site in ("tokyo", "nhn"):
        assert wait_for(lambda s=site: source_port(home, s)) == seoul_port  # type: ignore[misc]
    again = drorch(home, "failback", "--yes", "--output", "json")
    assert again.returncode == 3 and "seoul already is the primary" in again.stderr  # said, nothing done


def test_failback_refuses_when_seoul_holds_transactions_tokyo_never_got(home: Lab) -> None:
    fail_over_after_seoul_dies(home)
    seoul = home.admin("seoul")
    before = str(seoul.query("SELECT @@GLOBAL.gtid_binlog_state AS s")[0]["s"])
    # lab_admin has SUPER, which bypasses read_only: a write that never reached tokyo
    seoul.execute("INSERT INTO shop.orders (client_ref, site, amount) VALUES ('errant', 'seoul', 1)")
    try:
        refused = drorch(home, "failback", "--yes")
        assert refused.returncode == 3, refused.stderr
        assert "never received" in refused.stderr and "RESET MASTER" in refused.stderr
        assert writable_sites(home) == ["tokyo"] and home.admin("seoul").state().replica is None  # untouched
        assert dns.active_sites(home.estate)["PRIMARY"] == "tokyo"
    finally:
        # The rebuild the message describes, done the lab's short way: drop the errant row and its GTID.
        seoul.execute("SET SESSION sql_log_bin = 0", "DELETE FROM shop.orders WHERE client_ref = 'errant'",
                      "SET SESSION sql_log_bin = 1", "RESET MASTER", f"SET GLOBAL gtid_binlog_state = '{before}'")
    done = drorch(home, "failback", "--yes", "--output", "json")
    assert done.returncode == 0, done.stderr
    assert writable_sites(home) == ["seoul"]


def test_failback_cli_refuses_unknown_site(home: Lab) -> None:
    result = drorch(home, "failback", "--to", "osaka", "--yes")
    assert result.returncode == 2 and "osaka" in result.stderr
    assert writable_sites(home) == ["seoul"]

