"""Base backup + binlog shipping + point-in-time restore into a scratch server, on the lab."""

from __future__ import annotations

import json
import threading
import time

from drorch.backup import base, restore
from drorch.backup.binlogs import Shipper
from drorch.backup.status import backup_rpo_seconds, last_success
from drorch.lab import scratch
from drorch.providers.mysql.gtid import GtidPosition
from tests.backup.conftest import Corner
from tests.helpers import drorch_cli, estate_state, wait_for


def _shipped_past(shipper: Shipper, moment: float) -> bool:
    return (shipper.state.caught_up_at or 0.0) > moment


def test_restore_to_a_time_between_two_writes_gives_exactly_the_rows_before_it(corner: Corner) -> None:
    corner.make_table()
    stop = threading.Event()
    shipper = Shipper(corner.estate, corner.store)
    thread = threading.Thread(target=shipper.run, args=(stop,), daemon=True)
    thread.start()
    try:
        corner.write("in-the-backup")
        time.sleep(0.5)  # nhn (the backup source, async) applies it
        manifest = base.take(corner.estate, store=corner.store)
        assert manifest.site == "nhn" and manifest.tables[f"shop.{corner.table}"].rows == 1
        corner.write("before-1")
        corner.write("before-2")
        time.sleep(1.1)
        goal = time.time()
        time.sleep(1.1)
        after = corner.write("after-1")
        wait_for(lambda: _shipped_past(shipper, after), timeout=15)
        assert (backup_rpo_seconds(corner.config, corner.store) or 99) < 5
        assert last_success(corner.config, corner.store) == manifest.finished_at
    finally:
        stop.set()
        thread.join(timeout=15)
    assert not thread.is_alive() and shipper.reader is None  # the reader process was stopped
    bubble = scratch.start(corner.lab, "nhn")
    done = restore.restore(corner.estate, "scratch", restore.Goal(time=goal), False, store=corner.store, db=bubble.db)
    assert corner.refs(bubble.db) == ["in-the-backup", "before-1", "before-2"]
    assert done.base == manifest.id and done.transactions >= 2
    restored = bubble.db.query("SELECT @@GLOBAL.gtid_binlog_pos AS p, @@GLOBAL.read_only AS ro")[0]
    assert restored["p"] == done.position and restored["ro"] == 1
    # the whole history, by GTID: the row written after the time is there too
    primary_pos = corner.lab.admin("seoul").query("SELECT @@GLOBAL.gtid_binlog_pos AS p")[0]["p"]
    bubble.db.execute("SET GLOBAL read_only = OFF")  # a restore leaves it fenced; the next one must still accept it
    exact = restore.restore(corner.estate, "scratch", restore.Goal(gtid=GtidPosition.parse(done.position)),
                            True, store=corner.store, db=bubble.db)
    assert exact.position == done.position
    assert corner.refs(bubble.db) == ["in-the-backup", "before-1", "before-2"]
    assert str(primary_pos)


def test_recovery_from_the_bad_migration_to_one_second_before_it(corner: Corner) -> None:
    corner.make_table()
    for n in range(5):
        corner.write(f"row-{n}")
    time.sleep(0.5)
    before = estate_state(corner.lab)
    backup = drorch_cli(corner.path, "backup", "mysql", "--output", "json")
    assert backup.returncode == 0, backup.stderr
    assert json.loads(backup.stdout)["tables"][f"shop.{corner.table}"]["rows"] == 5
    corner.write("row-5")
    time.sleep(2.1)
    dropped = drorch_cli(corner.lab.layout.config, "lab", "chaos", "bad-migration", "--table",
                         f"shop.{corner.table}", "--dir", str(corner.lab.layout.root), "--output", "json")
    assert dropped.returncode == 0, dropped.stderr
    drop = json.loads(dropped.stdout)
    assert drop["site"] == "seoul"
    shipped = drorch_cli(corner.path, "backup", "ship-binlogs", "--once", "--output", "json")
    assert shipped.returncode == 0, shipped.stderr
    bubble = scratch.start(corner.lab, "tokyo")
    target = f"{bubble.db.address.host}:{bubble.db.address.port}"
    # a site with data is refused without --overwrite, and nothing changes
    refused = drorch_cli(corner.path, "restore", "mysql", "--target", "tokyo", "--to-time",
                         str(drop["before"] - 1), "--yes")
    assert refused.returncode == 3 and "--overwrite" in refused.stderr, refused.stderr
    assert estate_state(corner.lab) == before
    started = time.monotonic()
    done = drorch_cli(corner.path, "restore", "mysql", "--target", target, "--to-time", str(drop["before"] - 1),
                      "--yes", "--output", "json")
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 60
    assert corner.refs(bubble.db) == [f"row-{n}" for n in range(6)]
    assert json.loads(done.stdout)["transactions"] >= 1


def test_shipping_follows_the_primary_across_a_failover(corner: Corner) -> None:
    from drorch.engine.failover import failover

    corner.make_table()
    shipper = Shipper(corner.estate, corner.store)
    try:
        corner.write("on-seoul")
        time.sleep(0.5)
        base.take(corner.estate, store=corner.store)
        wait_for(lambda: shipper.step() >= 0 and shipper.site == "seoul" and (shipper.state.caught_up_at or 0) > 0)
        result = failover(corner.estate, "tokyo")
        assert result.status == "succeeded", result
        tokyo = corner.lab.admin("tokyo")
        tokyo.execute((f"INSERT INTO shop.{corner.table} (ref, at) VALUES ('on-tokyo', %s)", (time.time(),)))
        written = time.time()
        time.sleep(2.1)  # past FOLLOW_EVERY: the shipper looks for the primary again
        wait_for(lambda: shipper.step() >= 0 and shipper.site == "tokyo"
                 and (shipper.state.caught_up_at or 0) > written, timeout=20)
        goal = shipper.state.caught_up_at or 0.0
    finally:
        shipper.close()
    assert set(shipper.state.streams) == {"seoul", "tokyo"}
    bubble = scratch.start(corner.lab, "nhn")
    done = restore.restore(corner.estate, "scratch", restore.Goal(time=goal), False, store=corner.store,
                           db=bubble.db)
    assert corner.refs(bubble.db) == ["on-seoul", "on-tokyo"]
    assert "-2-" in done.position  # tokyo's own transaction (server id 2) is the newest restored
