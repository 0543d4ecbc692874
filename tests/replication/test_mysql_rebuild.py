"""`drorch replication reprotect SITE [--rebuild]` and `drorch failback --rebuild` on a former primary (seoul)
after an unplanned failover to tokyo: a clean one rejoins, a diverged one is refused until rebuilt."""

from __future__ import annotations

import json
import time

from drorch.data import heartbeat
from drorch.engine.failover import failover
from drorch.lab import chaos
from drorch.lab.control import Lab
from drorch.replication.roles import errant_between
from tests.helpers import drorch_cli, wait_for, writable_sites

DIVERGENT = "divergent-on-seoul"


def fail_over_after_seoul_dies(lab: Lab) -> None:
    """Heartbeats on seoul, seoul killed, unplanned failover to tokyo, seoul back (read-only, replicating from none)."""
    for seq in range(3):
        heartbeat.write(lab.estate.mysql("seoul"), lab.config.data.heartbeat.table, "seoul",
                        int(time.time() * 1000) + seq)
    chaos.kill_db(lab, "seoul")

    def tokyo_lost_seoul() -> bool:
        replica = lab.admin("tokyo").state().replica
        return replica is None or not replica.io_running

    wait_for(tokyo_lost_seoul, timeout=20)
    assert failover(lab.estate, "tokyo").status == "succeeded"
    chaos.start_db(lab, "seoul")
    assert writable_sites(lab) == ["tokyo"] and lab.admin("seoul").state().replica is None


def rows(lab: Lab, site: str, ref: str) -> int:
    return int(lab.admin(site).query("SELECT COUNT(*) AS n FROM shop.orders WHERE client_ref = %s", (ref,))[0]["n"])


def caught_up_replica_of_tokyo(lab: Lab) -> None:
    seoul, tokyo = lab.admin("seoul"), lab.admin("tokyo")
    replica = seoul.state().replica
    assert replica is not None and replica.source_port == lab.state.sites["tokyo"].mysql_port
    assert replica.io_running and replica.sql_running and seoul.state().read_only
    assert not errant_between(seoul, tokyo)
    assert not errant_between(tokyo, seoul)  # and seoul remembers every writer tokyo knows (peers compare later)
    checksum = "CHECKSUM TABLE shop.orders"
    wait_for(lambda: seoul.query(checksum)[0]["Checksum"] == tokyo.query(checksum)[0]["Checksum"])


def test_reprotect_rejoins_a_clean_former_primary(home: Lab) -> None:
    fail_over_after_seoul_dies(home)
    done = drorch_cli(home.layout.config, "replication", "reprotect", "seoul", "--yes", "--output", "json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["source"] == "tokyo" and not document["already"] and document["rebuilt"] is None
    assert document["failover_rpo_seconds"] == 0.0  # semi-sync: every acknowledged heartbeat reached tokyo
    caught_up_replica_of_tokyo(home)
    again = drorch_cli(home.layout.config, "replication", "reprotect", "seoul", "--output", "json")
    assert again.returncode == 0 and json.loads(again.stdout)["already"]  # nothing to confirm, nothing done


def test_a_diverged_former_primary_is_refused_then_rebuilt(home: Lab) -> None:
    config = home.layout.config
    fail_over_after_seoul_dies(home)
    seoul = home.admin("seoul")
    seoul.execute(f"INSERT INTO shop.orders (client_ref, site, amount) VALUES ('{DIVERGENT}', 'seoul', 1)")
    tokyo = home.admin("tokyo")
    tokyo.execute(*(f"INSERT INTO shop.orders (client_ref, site, amount) VALUES ('on-tokyo-{i}', 'tokyo', {i})"
                    for i in range(200)))

    refused = drorch_cli(config, "replication", "reprotect", "seoul", "--yes")
    assert refused.returncode == 3, refused.stderr
    assert "never received" in refused.stderr and "reprotect seoul --rebuild" in refused.stderr
    unconfirmed = drorch_cli(config, "replication", "reprotect", "seoul", "--rebuild")  # no terminal, no --yes
    assert unconfirmed.returncode == 2 and "--yes" in unconfirmed.stderr
    assert rows(home, "seoul", DIVERGENT) == 1 and seoul.state().replica is None  # untouched both times

    rebuilt = drorch_cli(config, "replication", "reprotect", "seoul", "--rebuild", "--yes")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "seoul: rebuilt from tokyo" in rebuilt.stdout and "discarded: 0-1-" in rebuilt.stdout
    assert "copied" in rebuilt.stderr and "MB/s" in rebuilt.stderr  # the progress display
    for secret in ("admin", "repl", "drorch"):
        password = home.layout.secret(secret).read_text().strip()
        assert password not in rebuilt.stdout + rebuilt.stderr
    assert rows(home, "seoul", DIVERGENT) == 0 and rows(home, "seoul", "on-tokyo-199") == 1
    caught_up_replica_of_tokyo(home)
    tokyo.execute("INSERT INTO shop.orders (client_ref, site) VALUES ('after-rebuild', 'tokyo')")
    wait_for(lambda: rows(home, "seoul", "after-rebuild") == 1)
    status = json.loads(drorch_cli(config, "replication", "status", "--output", "json").stdout)
    assert status["sites"]["seoul"]["role"] == "replica" and status["sites"]["seoul"]["errant_count"] == 0


def test_failback_with_rebuild_brings_a_diverged_seoul_home(home: Lab) -> None:
    fail_over_after_seoul_dies(home)
    home.admin("seoul").execute(f"INSERT INTO shop.orders (client_ref, site) VALUES ('{DIVERGENT}', 'seoul')")
    refused = drorch_cli(home.layout.config, "failback", "--yes")
    assert refused.returncode == 3 and "--rebuild" in refused.stderr
    done = drorch_cli(home.layout.config, "failback", "--rebuild", "--yes", "--output", "json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["to"] == "seoul" and document["reprotect"]["rebuilt"]["bytes_copied"] > 0
    assert writable_sites(home) == ["seoul"] and rows(home, "seoul", DIVERGENT) == 0
