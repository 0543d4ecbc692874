"""`drorch replication setup` on the lab: the topology built from scratch, a second run a no-op, dry runs
that change nothing, re-pointing only when safe, and missing privileges named before anything changes."""

from __future__ import annotations

import json
from typing import Any

import yaml

from drorch.lab import chaos
from drorch.lab.control import Lab
from drorch.lab.layout import SITES
from drorch.state.backends import open_journal
from tests.helpers import drorch_cli, follows, wait_for, writable_sites


def topology(lab: Lab) -> dict[str, Any]:
    """Everything setup may change on each server, and its binlog history (setup must log nothing)."""
    found = {}
    for site in SITES:
        db = lab.admin(site)
        state = db.state()
        replica = state.replica
        accounts = db.query("SELECT COUNT(*) AS n FROM mysql.user WHERE User = 'repl'")[0]["n"]
        found[site] = {
            "read_only": state.read_only, "history": state.history, "accounts": accounts,
            "source": None if replica is None else (replica.source_port, replica.io_running, replica.sql_running),
            "semi_sync": (state.semi_sync.source_enabled, state.semi_sync.replica_enabled, state.semi_sync.wait_point),
        }
    return found


def reset_to_scratch(lab: Lab) -> None:
    """Replicas that replicate from nobody, writable, semi-sync off; nhn without the replication account."""
    for site in ("tokyo", "nhn"):
        lab.admin(site).execute("STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only = OFF",
                                "SET GLOBAL rpl_semi_sync_slave_enabled = OFF")
    lab.admin("seoul").execute("SET GLOBAL rpl_semi_sync_master_enabled = OFF",
                               "SET GLOBAL rpl_semi_sync_master_wait_point = AFTER_COMMIT")
    lab.admin("nhn").execute("SET SESSION sql_log_bin = 0", ("DROP USER IF EXISTS %s@%s", ("repl", "%")))


def test_setup_builds_the_lab_topology_from_scratch_and_a_second_run_changes_nothing(home: Lab) -> None:
    config = home.layout.config
    reset_to_scratch(home)
    scratch = topology(home)
    dry = drorch_cli(config, "replication", "setup", "--dry-run", "--output", "json")
    assert dry.returncode == 0, dry.stderr
    assert topology(home) == scratch  # the dry run changed nothing
    plan = json.loads(dry.stdout)
    assert plan["dry_run"] and not plan["applied"] and plan["primary"] == "seoul"
    statements = [s for change in plan["changes"] for s in change["statements"]]
    assert any(s.startswith("CREATE USER IF NOT EXISTS 'repl'@'%' IDENTIFIED BY '********'") for s in statements)
    assert "SET GLOBAL rpl_semi_sync_master_wait_point = AFTER_SYNC" in statements
    assert sum("MASTER_USE_GTID=slave_pos" in s and "MASTER_PASSWORD='********'" in s for s in statements) == 2
    for secret in ("repl", "admin"):
        password = home.layout.secret(secret).read_text().strip()
        assert password not in dry.stdout and password not in dry.stderr

    text = drorch_cli(config, "replication", "setup", "--dry-run")
    assert text.returncode == 0 and "dry run: nothing was changed" in text.stdout and "********" in text.stdout
    assert topology(home) == scratch

    done = drorch_cli(config, "replication", "setup", "--output", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["applied"]
    assert writable_sites(home) == ["seoul"]
    built = topology(home)
    seoul_port = home.state.sites["seoul"].mysql_port
    assert built["tokyo"]["source"] == built["nhn"]["source"] == (seoul_port, True, True)
    assert built["seoul"]["semi_sync"] == (True, False, "AFTER_SYNC")
    assert built["tokyo"]["semi_sync"][1] and not built["nhn"]["semi_sync"][1]
    assert built["nhn"]["accounts"] == 1
    assert built["seoul"]["history"] == scratch["seoul"]["history"]  # nothing setup did was binlogged
    wait_for(lambda: home.admin("seoul").state().semi_sync_source_active)

    again = drorch_cli(config, "replication", "setup", "--output", "json")
    assert again.returncode == 0, again.stderr
    document = json.loads(again.stdout)
    assert document["changes"] == [] and not document["applied"]
    assert topology(home) == built
    # and it replicates: a write on seoul reaches both replicas
    home.admin("seoul").execute("INSERT INTO shop.orders (client_ref, site) VALUES ('after-setup', 'seoul')")
    for site in ("tokyo", "nhn"):
        wait_for(lambda s=site: home.admin(s).query(  # type: ignore[misc]
            "SELECT COUNT(*) AS n FROM shop.orders WHERE client_ref = 'after-setup'")[0]["n"])


def test_setup_repoints_a_replica_on_the_wrong_source_when_it_is_safe(home: Lab) -> None:
    tokyo = home.state.sites["tokyo"]
    repl = home.layout.secret("repl").read_text().strip()
    nhn = home.admin("nhn")
    nhn.execute("STOP SLAVE", nhn.flavor.change_source_sql(tokyo.ip, tokyo.mysql_port, "repl", repl), "START SLAVE")
    status = drorch_cli(home.layout.config, "replication", "status", "--output", "json")
    assert status.returncode == 0, status.stderr
    assert any("nhn: replicates from tokyo, configured: seoul" in note for note in json.loads(status.stdout)["notes"])
    done = drorch_cli(home.layout.config, "replication", "setup")
    assert done.returncode == 0, done.stderr
    assert "nhn: replicate from seoul (was: " in done.stdout and "re-pointed" in done.stdout
    replica = nhn.state().replica
    assert replica is not None and replica.source_port == home.state.sites["seoul"].mysql_port


def test_setup_after_a_failover_repoints_a_replica_left_behind_to_the_new_primary(home: Lab) -> None:
    """nhn's database is down during a switchover to tokyo, so the failover leaves it for later; back, it
    replicates from seoul again. The failover said how to finish: setup points nhn at tokyo, once."""
    config = home.layout.config
    left = "run `drorch replication setup` when nhn answers again"
    assert chaos.kill_db(home, "nhn")
    try:
        planned = drorch_cli(config, "plan", "--to", "tokyo", "--output", "json")
        assert planned.returncode == 0, planned.stderr
        changes = {step["name"]: step["changes"] for step in json.loads(planned.stdout)["steps"]}
        assert any(left in change for change in changes["repoint the other replicas"])
        moved = drorch_cli(config, "failover", "--to", "tokyo", "--yes", "--output", "json")
        assert moved.returncode == 0, moved.stderr
        result = json.loads(moved.stdout)
        assert any(left in note for note in result["notes"]), result["notes"]
        step = next(s for s in json.loads(moved.stdout)["steps"] if s["name"] == "repoint the other replicas")
        assert step["detail"]["unreachable"] == ["nhn"]
        record = open_journal(home.config).run(result["run_id"])
        assert record is not None
        journaled = next(s for s in record.steps if s.name == "repoint the other replicas")
        assert any(left in note for note in journaled.detail["notes"])
        shown = drorch_cli(config, "runs", "show", result["run_id"])
        assert shown.returncode == 0 and left in shown.stdout
    finally:
        assert chaos.start_db(home, "nhn")
    wait_for(lambda: follows(home, "nhn", "seoul"), timeout=30)  # back, it follows the old primary
    assert writable_sites(home) == ["tokyo"]
    status = drorch_cli(config, "replication", "status", "--output", "json")
    assert status.returncode == 0, status.stderr
    assert "nhn: replicates from seoul, not from tokyo, the primary since a failover" in " ".join(
        json.loads(status.stdout)["notes"])

    dry = drorch_cli(config, "replication", "setup", "--dry-run", "--output", "json")
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert plan["primary"] == "tokyo" and plan["after_failover"] and not plan["applied"]
    assert [(c["site"], c["what"].split(" (was")[0]) for c in plan["changes"]] == [("nhn", "replicate from tokyo")]
    assert follows(home, "nhn", "seoul")  # the dry run changed nothing
    done = drorch_cli(config, "replication", "setup", "--output", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["applied"]
    wait_for(lambda: follows(home, "nhn", "tokyo"), timeout=20)
    assert follows(home, "seoul", "tokyo") and writable_sites(home) == ["tokyo"]  # nothing else moved
    again = drorch_cli(config, "replication", "setup", "--output", "json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["changes"] == []  # idempotent
    home.admin("tokyo").execute("INSERT INTO shop.orders (client_ref, site) VALUES ('after-left-behind', 'tokyo')")
    wait_for(lambda: home.admin("nhn").query(
        "SELECT COUNT(*) AS n FROM shop.orders WHERE client_ref = 'after-left-behind'")[0]["n"])


def test_setup_names_the_grants_it_lacks_and_changes_nothing(home: Lab) -> None:
    """Without data.mysql.admin_user setup runs as each site's own drorch account, which cannot manage accounts."""
    document = yaml.safe_load(home.layout.config.read_text())
    del document["data"]["mysql"]["admin_user"], document["data"]["mysql"]["admin_password"]
    own = home.layout.root / "drorch-no-admin.yaml"
    own.write_text(yaml.safe_dump(document))
    before = topology(home)
    home.admin("tokyo").execute("SET GLOBAL rpl_semi_sync_slave_enabled = OFF")  # something to change
    try:
        refused = drorch_cli(own, "replication", "setup")
        assert refused.returncode == 3, refused.stderr
        assert "tokyo (" in refused.stderr and "as 'drorch'@'%'" in refused.stderr
        assert "GRANT SELECT ON `mysql`.* TO 'drorch'@'%'" in refused.stderr
        assert "Nothing was changed" in refused.stderr
        assert not home.admin("tokyo").state().semi_sync.replica_enabled
    finally:
        home.admin("tokyo").execute("STOP SLAVE", "SET GLOBAL rpl_semi_sync_slave_enabled = ON", "START SLAVE")
    assert topology(home)["tokyo"]["semi_sync"] == before["tokyo"]["semi_sync"]
