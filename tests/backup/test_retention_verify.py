"""Retention deletes only what it should; verification passes a good backup and catches a broken one."""

from __future__ import annotations

import gzip
import json

from drorch.backup import base, layout, retention, verify
from drorch.backup.layout import Manifest, Segment
from drorch.backup.restore import BINLOG_MARGIN
from drorch.config.schema import BackupRetention
from tests.backup.conftest import Corner
from tests.helpers import drorch_cli

DAY = 86400.0
NOW = 1_800_000_000.0  # a Friday, 2027-01-15


def _fake_backup(corner: Corner, backup_id: str, snapshot: float) -> None:
    manifest = Manifest(backup_id, "shop", "nhn", "h:1", "v", "t", "0", snapshot, snapshot, snapshot, "0-1-1",
                        layout.dump_key(backup_id), 1, 1, "0" * 64, "gzip", ["shop"])
    corner.store.put_bytes(layout.dump_key(backup_id), b"x")
    corner.store.put_json(layout.manifest_key(backup_id), manifest.to_json())


def test_retention_keeps_n_daily_and_m_weekly_and_the_binlogs_they_need(corner: Corner) -> None:
    # one backup a day for 30 days, two on the newest day
    snapshots = {f"b{day:02d}": NOW - day * DAY for day in range(30)}
    snapshots["b00-early"] = NOW - 3600
    for backup_id, snapshot in snapshots.items():
        _fake_backup(corner, backup_id, snapshot)
    rules = BackupRetention(daily=3, weekly=3)
    expected = retention.keep([_manifest(i, t) for i, t in snapshots.items()], rules)
    assert {"b00", "b01", "b02"} <= expected and "b00-early" not in expected
    assert len(expected) == 5  # 3 days + the newest of the two older ISO weeks (this week's is b00)
    oldest = min(snapshots[i] for i in expected)
    # binlog segments: an old file wholly before the cutoff, and a file straddling it
    old = Segment("seoul-20270101T000000Z", "mysql-bin.000001", 0, 100, int(oldest - 2 * BINLOG_MARGIN),
                  int(oldest - 2 * BINLOG_MARGIN))
    straddle = [Segment("seoul-20270101T000000Z", "mysql-bin.000002", 0, 100, int(oldest - 3 * BINLOG_MARGIN),
                        int(oldest - 3 * BINLOG_MARGIN)),
                Segment("seoul-20270101T000000Z", "mysql-bin.000002", 100, 200, int(oldest - 2 * BINLOG_MARGIN),
                        int(oldest - 2 * BINLOG_MARGIN)),
                Segment("seoul-20270101T000000Z", "mysql-bin.000002", 200, 300, int(oldest), int(oldest + 10))]
    for segment in [old, *straddle]:
        corner.store.put_bytes(segment.key, b"binlog")
    preview = drorch_cli(corner.path, "backup", "prune", "--dry-run", "--output", "json")
    assert preview.returncode == 0, preview.stderr
    planned = json.loads(preview.stdout)
    assert corner.config.backups is not None
    lab_rules = retention.prune(corner.store, corner.config.backups.retention, dry_run=True)  # daily 7, weekly 4
    assert planned["dry_run"] and planned["deleted_backups"] == lab_rules.deleted_backups
    assert len(planned["kept"]) == 7 + 2  # 7 days; the weeks before them: 2 more of the 4 weekly
    assert len(corner.store.listing("base/")[0]) == 2 * len(snapshots)  # a dry run deletes nothing
    done = retention.prune(corner.store, rules, now=NOW)
    assert set(done.kept) == expected
    assert set(done.deleted_backups) == set(snapshots) - expected
    left = {o.key for o in corner.store.listing("")[0]}
    for backup_id in snapshots:
        assert (layout.manifest_key(backup_id) in left) == (backup_id in expected), backup_id
        assert (layout.dump_key(backup_id) in left) == (backup_id in expected), backup_id
    # the old file goes; the straddling file keeps its first segment (format description) and the kept range
    assert old.key not in left and straddle[1].key not in left
    assert straddle[0].key in left and straddle[2].key in left
    assert done.deleted_segments == 2


def _manifest(backup_id: str, snapshot: float) -> Manifest:
    return Manifest(backup_id, "shop", "nhn", "h:1", "v", "t", "0", snapshot, snapshot, snapshot, "", "", 0, 0, "",
                    "gzip", [])


def test_verify_passes_a_good_backup_and_catches_a_broken_one(corner: Corner) -> None:
    corner.make_table()
    for n in range(20):
        corner.write(f"row-{n}")
    manifest = base.take(corner.estate, store=corner.store)
    good = drorch_cli(corner.path, "backup", "verify", "--output", "json")
    assert good.returncode == 0, good.stderr
    found = json.loads(good.stdout)
    assert found["ok"] and found["gtid_position"] == manifest.gtid_position and found["tables_checked"] >= 3
    assert not [s for s in corner.lab.state.sites if corner.lab.layout.mariadb_dir(f"scratch-{s}").exists()]
    # a backup whose bytes still match its manifest but whose contents changed: one value altered
    dump = gzip.decompress(corner.store.get_bytes(manifest.object_key, manifest.sha256))
    assert b"'row-7'" in dump
    altered = gzip.compress(dump.replace(b"'row-7'", b"'row-X'"))
    stored = corner.store.put_bytes(manifest.object_key, altered)
    corner.store.put_json(layout.manifest_key(manifest.id),
                          {**manifest.to_json(), "sha256": stored.sha256, "size": stored.size})
    broken = verify.verify(corner.estate, store=corner.store)
    assert not broken.ok and any(f"shop.{corner.table} has other contents" in p for p in broken.problems)
    # a corrupted object: refused by its checksum, verification fails (exit 1) naming it
    corner.store.put_bytes(manifest.object_key, altered[:-8] + b"garbage!")
    corrupted = drorch_cli(corner.path, "backup", "verify")
    assert corrupted.returncode == 1 and f"{manifest.object_key} is corrupted" in corrupted.stderr, corrupted.stderr
    listed = json.loads(drorch_cli(corner.path, "backup", "list", "--output", "json").stdout)
    assert listed["backups"][0]["verified"]["ok"] is False
