"""Bad input and failure: corrupted objects, binlog gaps, times out of range, a missing bucket; nothing overwritten."""

from __future__ import annotations

import time

import pytest
import yaml

from drorch.backup import base, catalogue, layout, restore
from drorch.backup.binlogs import Shipper
from drorch.backup.catalogue import BinlogGap
from drorch.backup.store import ChecksumMismatch
from drorch.errors import InvalidInput
from drorch.lab import scratch
from tests.backup.conftest import Corner
from tests.helpers import drorch_cli, wait_for


def _ship_in_steps(corner: Corner, shipper: Shipper, refs: list[str]) -> None:
    """One write, then one shipping round, per ref: one segment each."""
    for ref in refs:
        written = corner.write(ref)
        wait_for(lambda at=written: shipper.step() >= 0 and (shipper.state.caught_up_at or 0) > at,  # type: ignore[misc]
                 timeout=15)


def test_a_corrupted_object_and_a_binlog_gap_are_refused_and_nothing_is_overwritten(corner: Corner) -> None:
    corner.make_table()
    shipper = Shipper(corner.estate, corner.store)
    try:
        shipper.step()
        time.sleep(0.5)
        manifest = base.take(corner.estate, store=corner.store)
        _ship_in_steps(corner, shipper, ["a", "b", "c"])
        time.sleep(1.1)
        shipper.step()
        goal = shipper.state.caught_up_at or 0.0  # everything written before it is shipped
    finally:
        shipper.close()
    bubble = scratch.start(corner.lab, "nhn")
    bubble.db.execute("CREATE TABLE shop.marker (id INT PRIMARY KEY)", "INSERT INTO shop.marker VALUES (1)")
    bubble.db.execute("SET GLOBAL read_only = ON")
    target = f"{bubble.db.address.host}:{bubble.db.address.port}"

    def untouched() -> None:
        assert bubble.db.query("SELECT COUNT(*) AS n FROM shop.marker")[0]["n"] == 1

    # the target holds data: refused without --overwrite (exit 3), with the reason
    refused = drorch_cli(corner.path, "restore", "mysql", "--target", target, "--to-time", str(goal), "--yes")
    assert refused.returncode == 3 and "holds data (shop.marker)" in refused.stderr, refused.stderr
    untouched()
    # a time before the oldest backup, and after the newest shipped event: exit 2, named
    early = drorch_cli(corner.path, "restore", "mysql", "--target", target, "--to-time",
                       str(manifest.snapshot_time - 60), "--overwrite", "--yes")
    assert early.returncode == 2 and f"before the oldest backup {manifest.id}" in early.stderr, early.stderr
    late = drorch_cli(corner.path, "restore", "mysql", "--target", target, "--to-time", str(time.time() + 3600),
                      "--overwrite", "--yes")
    assert late.returncode == 2 and "after the newest shipped binlog event" in late.stderr, late.stderr
    untouched()
    # a binlog gap: a segment in the middle is gone, then the newest one
    segments = sorted(catalogue.segments(corner.store), key=lambda s: (s.file, s.start))
    middle, newest = segments[-2], segments[-1]
    kept = corner.store.get_bytes(middle.key)
    corner.store.delete([middle.key])
    with pytest.raises(BinlogGap, match=f"bytes {middle.start}-{middle.end} are missing between"):
        restore.restore(corner.estate, target, restore.Goal(time=goal), True, store=corner.store)
    corner.store.put_bytes(middle.key, kept)
    tail = corner.store.get_bytes(newest.key)
    corner.store.delete([newest.key])
    with pytest.raises(BinlogGap, match=f"recorded bytes up to {newest.end} as shipped"):
        restore.restore(corner.estate, target, restore.Goal(time=goal), True, store=corner.store)
    untouched()
    corner.store.put_bytes(newest.key, tail)
    # a corrupted base backup: the bytes no longer match the manifest's SHA-256
    original = corner.store.get_bytes(manifest.object_key, manifest.sha256)
    corner.store.put_bytes(manifest.object_key, original[:-10] + b"corrupted!")
    corrupted = drorch_cli(corner.path, "restore", "mysql", "--target", target, "--to-time", str(goal),
                           "--overwrite", "--yes")
    assert corrupted.returncode == 3, corrupted.stderr
    assert f"{manifest.object_key} is corrupted" in corrupted.stderr, corrupted.stderr
    untouched()
    # a corrupted binlog segment is refused by name too
    corner.store.put_bytes(manifest.object_key, original)
    corner.store.client.put_object(Bucket=corner.store.bucket, Key=corner.store.root + middle.key, Body=b"x" * 40,
                                   Metadata={"sha256": "0" * 64})
    with pytest.raises(ChecksumMismatch, match=middle.key):
        restore.restore(corner.estate, target, restore.Goal(time=goal), True, store=corner.store)
    untouched()
    corner.store.put_bytes(middle.key, kept)
    done = restore.restore(corner.estate, target, restore.Goal(time=goal), True, store=corner.store)
    assert corner.refs(bubble.db) == ["a", "b", "c"] and done.overwrote


def test_a_missing_bucket_is_named_and_wrong_input_exits_2(corner: Corner) -> None:
    document = yaml.safe_load(corner.path.read_text())
    document["backups"]["store"]["bucket"] = "no-such-drorch-bucket"
    missing = corner.path.with_name(corner.path.stem + "-missing.yaml")
    missing.write_text(yaml.safe_dump(document))
    try:
        for args in (["backup", "mysql"], ["backup", "list"], ["restore", "mysql", "--target", "nhn", "--to-time",
                                                                str(time.time()), "--yes"]):
            done = drorch_cli(missing, *args)
            assert done.returncode == 2 and "bucket 'no-such-drorch-bucket' does not exist" in done.stderr, done.stderr
    finally:
        missing.unlink()
    both = drorch_cli(corner.path, "restore", "mysql", "--target", "nhn", "--to-time", "1", "--to-gtid", "0-1-1")
    assert both.returncode == 2 and "exactly one of" in both.stderr
    nothing = drorch_cli(corner.path, "restore", "mysql", "--target", "nhn", "--to-time", "2026-01-01", "--overwrite",
                         "--yes")
    assert nothing.returncode == 3 and "no base backup" in nothing.stderr, nothing.stderr
    with pytest.raises(InvalidInput, match="give an ISO 8601 time"):
        restore.parse_time("yesterday-ish")
    assert restore.parse_time("2026-11-22T18:25:50Z") == restore.parse_time("2026-11-22T18:25:50")
    assert layout.parse_segment("binlogs/s-1/f/000000000000-000000000010_1_2.gz") is not None
