"""`drorch drill --mode isolated`: a scratch copy of tokyo's replica is promoted and serves a write; nothing moves."""

from __future__ import annotations

import json

from drorch.lab import processes
from drorch.lab.control import Lab
from drorch.state.backends import open_journal
from tests.helpers import drorch_cli, estate_state


def test_isolated_drill_promotes_a_copy_and_leaves_dns_roles_and_data_untouched(home: Lab) -> None:
    before = estate_state(home)  # roles, sources, shop.orders checksums on every site, DNS, ECS capacity
    done = drorch_cli(home.layout.config, "drill", "--to", "tokyo", "--mode", "isolated", "--yes", "--output", "json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    measured = result["measured"]
    assert result["mode"] == "isolated" and result["status"] == "succeeded", result
    assert measured["copied_bytes"] > 0 and 0 <= measured["data_age_seconds"] <= 1.0  # semi-sync replica: fresh
    assert 0 < measured["recovery_seconds"] < home.config.objectives.rto_seconds
    assert estate_state(home) == before  # the copy took the write; the real databases, DNS and capacity did not
    assert not [t.name for t in processes.tracked_all(home.layout.run) if t.name.startswith("scratch-")]
    assert not home.layout.mariadb_dir("scratch-tokyo").exists()
    record = open_journal(home.config).run(result["run_id"])
    assert record is not None
    steps = {step.name: step.status for step in record.steps}
    assert steps["smoke checks against the scratch copy"] == "succeeded"
    assert steps["return tokyo's compute to warm"] == "succeeded"
    assert steps["check nothing else changed"] == "succeeded"


def test_isolated_drill_refuses_a_standby_that_is_not_promotable(home: Lab) -> None:
    home.admin("tokyo").execute("STOP SLAVE")
    try:
        before = estate_state(home)
        done = drorch_cli(home.layout.config, "drill", "--to", "tokyo", "--mode", "isolated", "--yes")
        assert done.returncode == 3 and "tokyo is not promotable" in done.stderr, done.stderr
        assert estate_state(home) == before
    finally:
        home.admin("tokyo").execute("START SLAVE")
