"""An errant transaction on a replica (tokyo): seen by status and the metric, it blocks promotion and setup,
and a rebuild removes it."""

from __future__ import annotations

import json

from drorch.engine.actions import dns
from drorch.lab.control import Lab
from drorch.state.backends import open_journal
from tests.helpers import drorch_cli, one_round_metrics, wait_for, writable_sites

ERRANT_ROW = "errant-on-tokyo"


def inject_errant(lab: Lab) -> None:
    """A write on tokyo alone, in its own GTID domain (admin bypasses read_only): 2-2-1, seoul never has it."""
    lab.admin("tokyo").execute(
        "SET SESSION gtid_domain_id = 2",
        f"INSERT INTO shop.orders (id, client_ref, site, amount) VALUES (900000001, '{ERRANT_ROW}', 'tokyo', 1)")


def test_errant_gtid_is_reported_blocks_promotion_and_is_rebuilt_away(home: Lab) -> None:
    config = home.layout.config
    inject_errant(home)
    try:
        status = drorch_cli(config, "replication", "status", "--output", "json")
        assert status.returncode == 0, status.stderr
        tokyo = json.loads(status.stdout)["sites"]["tokyo"]
        assert tokyo["errant_gtids"] == ["2-2-1"] and tokyo["errant_count"] == 1 and tokyo["errant_against"] == "seoul"
        assert json.loads(status.stdout)["sites"]["nhn"]["errant_count"] == 0
        text = drorch_cli(config, "replication", "status")
        assert "errant transactions seoul never had: 2-2-1" in text.stdout

        metrics = one_round_metrics(home)
        assert metrics.registry.get_sample_value("drorch_errant_transactions", {"site": "tokyo"}) == 1
        assert metrics.registry.get_sample_value("drorch_errant_transactions", {"site": "nhn"}) == 0

        refused = drorch_cli(config, "failover", "--to", "tokyo", "--yes")
        assert refused.returncode == 3, refused.stderr
        assert "2-2-1" in refused.stderr and "reprotect tokyo --rebuild" in refused.stderr
        assert writable_sites(home) == ["seoul"]
        # --force overrides the readiness guard, not the promote step's own check: rolled back, exit 3
        unconfirmed = drorch_cli(config, "failover", "--to", "tokyo", "--yes", "--force")
        assert unconfirmed.returncode == 2 and "--confirm-force tokyo" in unconfirmed.stderr  # typed, not just --yes
        mistyped = drorch_cli(config, "failover", "--to", "tokyo", "--yes", "--force", "--confirm-force", "tokio")
        assert mistyped.returncode == 2 and "not confirmed" in mistyped.stderr
        assert writable_sites(home) == ["seoul"]
        forced = drorch_cli(config, "failover", "--to", "tokyo", "--yes", "--force", "--confirm-force", "tokyo",
                            "--output", "json")
        assert forced.returncode == 3, forced.stderr
        result = json.loads(forced.stdout)
        assert result["status"] == "rolled_back" and "errant GTIDs: 2-2-1" in result["error"]
        record = open_journal(home.config).run(result["run_id"])
        assert record is not None and record.summary["reason"] == "--force confirmed: tokyo given as --confirm-force"
        assert writable_sites(home) == ["seoul"] and dns.active_sites(home.estate)["PRIMARY"] == "seoul"

        setup = drorch_cli(config, "replication", "setup", "--dry-run")
        assert setup.returncode == 3 and "tokyo replicates from seoul but it holds 1 transaction(s)" in setup.stderr

        plain = drorch_cli(config, "replication", "reprotect", "tokyo", "--yes")
        assert plain.returncode == 3 and "2-2-1" in plain.stderr  # no --rebuild: refused, nothing changed
        kept = home.admin("tokyo").query(f"SELECT COUNT(*) AS n FROM shop.orders WHERE client_ref = '{ERRANT_ROW}'")
        assert kept[0]["n"] == 1
    finally:
        rebuilt = drorch_cli(config, "replication", "reprotect", "tokyo", "--rebuild", "--yes", "--output", "json")
    assert rebuilt.returncode == 0, rebuilt.stderr
    document = json.loads(rebuilt.stdout)
    assert document["source"] == "seoul" and any("2-2-1" in lost for lost in document["rebuilt"]["discarded"])
    tokyo_db = home.admin("tokyo")
    assert tokyo_db.query(f"SELECT COUNT(*) AS n FROM shop.orders WHERE client_ref = '{ERRANT_ROW}'")[0]["n"] == 0
    state = tokyo_db.state()
    assert "2-2-" not in state.history and state.read_only
    assert state.replica is not None and state.replica.io_running and state.replica.sql_running
    wait_for(lambda: home.admin("seoul").state().semi_sync_source_active)  # tokyo acks again
    assert one_round_metrics(home).registry.get_sample_value("drorch_errant_transactions", {"site": "tokyo"}) == 0
