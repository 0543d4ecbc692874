"""`drorch drill --mode restore`: recovery from the bad migration by the backup tier, timed, checked, cleaned up."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from drorch.backup import catalogue
from drorch.lab import processes
from drorch.state.backends import open_journal
from tests.backup.conftest import Corner
from tests.helpers import drorch_cli, estate_state


def test_restore_drill_recovers_the_dropped_table_and_leaves_the_estate_as_it_was(corner: Corner) -> None:
    before = estate_state(corner.lab)  # roles, sources, shop.orders checksums on every site, DNS, ECS capacity
    done = drorch_cli(corner.path, "drill", "--to", "tokyo", "--mode", "restore", "--yes", "--output", "json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    measured = result["measured"]
    assert result["mode"] == "restore" and result["status"] == "succeeded" and result["missed"] == [], result
    assert measured["base_backup_taken"] and len(catalogue.manifests(corner.store)) == 1  # its corner had none
    assert measured["rows_written"] > 10 and measured["rows_missing"] == 0  # every write before the drop is back
    assert measured["data_loss_seconds"] <= corner.config.objectives.rpo_seconds
    assert 0 < measured["time_to_restore_seconds"] <= corner.config.objectives.rto_seconds
    assert measured["restored_to_gtid"] != measured["migration_gtid"]
    assert estate_state(corner.lab) == before
    record = open_journal(corner.config).run(result["run_id"])
    assert record is not None
    drill_table = str(record.summary["table"])
    schema, name = drill_table.split(".")
    for site in corner.lab.state.sites:  # the migration removed the drill's table everywhere; nothing was left
        assert not corner.lab.admin(site).query(
            "SELECT 1 AS x FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
            (schema, name)), site
    assert not [t.name for t in processes.tracked_all(corner.lab.layout.run) if t.name.startswith("scratch-")]
    steps = {step.name: step.status for step in record.steps}
    assert steps[f"bad migration: drop {drill_table} on seoul"] == "succeeded"
    assert steps["check the marker and every written row in the restored copy"] == "succeeded"
    assert steps["check nothing else changed"] == "succeeded"
    reports = corner.lab.layout.root / "state" / "reports"
    assert sorted(p.name for p in reports.glob(f"{result['run_id']}.*")) == [
        f"{result['run_id']}.{suffix}" for suffix in ("html", "json", "md")]
    assert "| RPO |" in (reports / f"{result['run_id']}.md").read_text()


def test_restore_drill_needs_the_lab_and_a_backups_section(corner: Corner, tmp_path: Path) -> None:
    document = yaml.safe_load(corner.path.read_text())
    del document["backups"]
    plain = corner.lab.layout.root / f"{corner.path.stem}-no-backups.yaml"
    plain.write_text(yaml.safe_dump(document, sort_keys=False))
    try:
        refused = drorch_cli(plain, "drill", "--to", "tokyo", "--mode", "restore", "--yes")
    finally:
        plain.unlink()
    assert refused.returncode == 2 and "'backups:'" in refused.stderr, refused.stderr
    elsewhere = tmp_path / "drorch.yaml"  # the same estate (its secrets and clouds file), but no lab.json beside it
    elsewhere.write_text(corner.path.read_text())
    for needed in ("secrets", "clouds.yaml"):
        (tmp_path / needed).symlink_to(corner.lab.layout.root / needed)
    refused = drorch_cli(elsewhere, "drill", "--to", "tokyo", "--mode", "restore", "--yes")
    assert refused.returncode == 2 and "lab only" in refused.stderr, refused.stderr
