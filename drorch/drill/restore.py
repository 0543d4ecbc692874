"""The restore drill: undo a bad migration with the backup tier alone, timed from the migration, checked row by row.

Replication copies a ``DROP TABLE`` to every standby within a second, so failover
cannot undo it; only the backups can. This drill rehearses exactly that recovery
on a table of its own (in drorch's heartbeat schema: the application's data is
never touched) and measures what the backup tier really delivers:

1. a base backup exists in the config's store (one is taken when there is none);
2. the drill ships the primary's binlogs itself, as ``serve``'s leader would. It
   runs under the controller lease (the CLI takes it), so no leader ships the same
   stream at the same time: two shippers cut the same binlog into overlapping
   objects, which a restore rightly refuses as a gap;
3. the drill table is created on the primary and a client writes into it (a
   marker row first), until and while the lab's ``bad_migration`` drops it;
4. once the shipped binlogs hold the drop, the drop is found in them (as on-call
   finds it with ``mariadb-binlog``) and the restore aims at the GTID just before
   it: binlog times have whole seconds, so a restore "to one second before" would
   lose up to two seconds of writes by construction, not by any fault of the tier;
5. a scratch MariaDB at ``--to``'s address (never a site's own server) receives
   the restore, and every acknowledged row of the drill table is looked for in it.

Measured: the time from the migration to a verified restored server (against the
RTO), and the data lost (acknowledged rows missing, and the time between the
oldest missing row, or else the newest restored one, and the migration) against
the RPO. The estate ends as it started: the migration itself removed the drill
table everywhere (it is dropped on the primary when the drill stops before that),
the scratch server is removed, and roles and DNS are compared before and after.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from drorch.backup import base, catalogue, events, restore
from drorch.backup.binlogs import Shipper, read_state
from drorch.backup.events import Group
from drorch.backup.store import Store
from drorch.config.schema import Config
from drorch.drill.archive import write_reports
from drorch.drill.harness import DrillResult, finish_failed, lab_of
from drorch.drill.isolated import fingerprint
from drorch.engine.run import Progress, Run
from drorch.engine.topology import observe
from drorch.errors import DrorchError, InvalidInput, OperationFailed, RefusedForSafety
from drorch.providers.estate import Estate
from drorch.providers.mysql.admin import admin_client
from drorch.providers.mysql.client import MySQLClient
from drorch.providers.mysql.gtid import GtidPosition
from drorch.state.journal import Journal

WRITE_SECONDS = 2.0  # the client writes this long before the migration, and goes on writing through it
WRITE_RATE = 20.0  # rows per second
SHIP_TIMEOUT = 60.0  # for the shipper to connect, and later to hold the migration
GONE_TIMEOUT = 15.0  # for the replicas to apply the drop
FIND_MARGIN = 5.0  # seconds before the migration from which shipped binlogs are searched for it


@dataclass
class _Client:
    """Writes numbered rows (a marker first) into the drill table on the primary, in a thread, until stopped.

    A row counts as written once its INSERT returned: those are the writes a restore must bring back."""

    db: MySQLClient
    table: str
    marker: str
    stop: threading.Event = field(default_factory=threading.Event)
    written: list[tuple[str, float]] = field(default_factory=list)  # (ref, when the write began)
    failed: int = 0
    _thread: threading.Thread | None = None

    def start(self) -> dict[str, Any]:
        """The marker row, then rows in a thread; returns after ``WRITE_SECONDS`` of writing (still going)."""
        connection = self.db.open()
        try:
            self._insert(connection, self.marker)
        except Exception:
            connection.close()
            raise
        self._thread = threading.Thread(target=self._write, args=(connection,), name="restore-drill-client",
                                        daemon=True)
        self._thread.start()
        time.sleep(WRITE_SECONDS)
        return {"marker": self.marker, "rows_so_far": len(self.written)}

    def _insert(self, connection: Any, ref: str) -> None:
        began = time.time()
        with connection.cursor() as cur:
            cur.execute(f"INSERT INTO {self.table} (ref, at) VALUES (%s, %s)", (ref, began))
        self.written.append((ref, began))

    def _write(self, connection: Any) -> None:
        try:
            n = 0
            while not self.stop.wait(1.0 / WRITE_RATE):
                try:
                    self._insert(connection, f"row-{n}")
                except Exception:  # the table is gone (the migration): the app's writes fail too
                    self.failed += 1
                n += 1
        finally:
            connection.close()

    def finish(self) -> None:
        self.stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


@dataclass
class _Shipping:
    """The drill's own binlog shipper, in a thread, as ``serve``'s leader runs one."""

    estate: Estate
    store: Store
    stop: threading.Event = field(default_factory=threading.Event)
    _shipper: Shipper | None = None
    _thread: threading.Thread | None = None

    @property
    def shipper(self) -> Shipper:
        assert self._shipper is not None, "start() first"
        return self._shipper

    def start(self) -> dict[str, Any]:
        self._shipper = Shipper(self.estate, self.store)  # reads the shipping state now: resumes where it stopped
        self._thread = threading.Thread(target=self.shipper.run, args=(self.stop,), name="restore-drill-shipper",
                                        daemon=True)
        self._thread.start()
        return self.past(time.time(), "connect and catch up with the primary's binlog")

    def past(self, moment: float, what: str) -> dict[str, Any]:
        """Wait until everything the primary had written at ``moment`` is in the store."""
        deadline = time.monotonic() + SHIP_TIMEOUT
        while (self.shipper.state.caught_up_at or 0.0) <= moment:
            if time.monotonic() > deadline or self._thread is None or not self._thread.is_alive():
                raise OperationFailed(f"binlog shipping did not {what} within {SHIP_TIMEOUT:g} s"
                                      + (f" (last error: {self.shipper.last_error})" if self.shipper.last_error
                                         else ""))
            time.sleep(0.05)
        caught_up = self.shipper.state.caught_up_at or moment
        return {"shipped_through": caught_up, "lag_seconds": round(caught_up - moment, 3),
                "segments": self.shipper.segments_shipped, "bytes": self.shipper.bytes_shipped,
                "stream": None if self.shipper.stream is None else self.shipper.stream.stream}

    def finish(self) -> None:
        self.stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)  # ``run`` closes the shipper: its reader stopped by PID


def restore_drill(estate: Estate, to: str, journal: Journal, progress: Progress | None = None,
                  store: Store | None = None) -> DrillResult:
    """Drop a drill table on the primary, restore to just before the drop into a scratch server at ``to``'s
    address, check every row, clean up; judge the time and the loss against the objectives.

    The caller holds the controller lease (see the module's docstring)."""
    from drorch.lab import chaos, scratch

    config = estate.config
    lab = _lab(estate)
    if config.backups is None:
        raise InvalidInput("drill --mode restore rehearses recovery from the backups, and the config has no "
                           "'backups:' section: add backups.store (provider, bucket) first")
    config.site(to)
    store = store or Store(config)
    home = observe(estate).primary
    table = f"{config.data.heartbeat.table.split('.')[0]}.drill_restore_{secrets.token_hex(4)}"
    run = Run("drill", {"mode": "restore", "to": to, "home": home, "table": table}, progress, journal)
    client = _Client(admin_client(estate, home), _quoted(table), f"marker-{run.run_id}")
    shipping = _Shipping(estate, store)
    figures: dict[str, Any] = {}
    migrated: dict[str, Any] = {}
    scratch_db: dict[str, MySQLClient] = {}
    try:
        try:
            before = run.step("record the estate's roles, sources and DNS", lambda: fingerprint(estate))
            run.step("check the backup store", lambda: _reach(store))
            run.step(f"create the drill table {table} on {home}", lambda: _create(client.db, table))
            figures.update(run.step("make sure there is a base backup", lambda: _base(estate, store)))
            run.step("ship the primary's binlogs", shipping.start)
            run.step(f"write the marker row, and keep writing ({WRITE_RATE:g} rows/s)", client.start)
            migrated.update(run.step(f"bad migration: drop {table} on {home}",
                                     lambda: chaos.bad_migration(lab, table)))
            at = float(migrated["before"])
            client.finish()
            shipped = run.step("wait until the shipped binlogs hold the migration",
                               lambda: shipping.past(at, "hold the migration"))
            shipping.finish()
            found = run.step("find the migration in the shipped binlogs", lambda: _find_drop(store, table, at))
            run.step(f"start a scratch database at {to}'s address", lambda: _scratch(lab, estate, to, scratch_db))
            restored = run.step(f"restore to GTID {found['goal']} into the scratch database", lambda: restore.restore(
                estate, "scratch", restore.Goal(gtid=GtidPosition.parse(found["goal"])), False, store=store,
                db=scratch_db["db"]).to_json())
            checked = run.step("check the marker and every written row in the restored copy",
                               lambda: _check(scratch_db["db"], table, client))
            figures.update(_figures(at, checked, client, shipped, found, restored))
        finally:
            client.finish()
            shipping.finish()
            run.step(f"remove the scratch database at {to}'s address", lambda: {"stopped": scratch.stop(lab, to)})
            if not migrated:
                run.step(f"drop the drill table on {home} (the migration did not run)",
                         lambda: _drop_leftover(estate, table))
        run.step("check the drill table is gone from every site", lambda: _gone(estate, table))
        run.step("check nothing else changed", lambda: _as_before(estate, before))
    except DrorchError as exc:
        finish_failed(run, config, journal, {"mode": "restore", "to": to, "home": home, "table": table,
                                             "measured": figures}, exc, {})
        raise
    objectives = _judge(config, figures)
    status = "succeeded" if all(v["met"] for v in objectives.values()) else "missed"
    run.finish(status, {"mode": "restore", "to": to, "home": home, "table": table, "measured": figures,
                        "objectives": objectives, "migration_at": migrated["before"]})
    write_reports(config, journal, run.run_id)
    return DrillResult(run.run_id, "restore", to, home, status, figures, objectives, None, None)


def _lab(estate: Estate) -> Any:
    try:
        return lab_of(estate)
    except InvalidInput:
        raise InvalidInput("drill --mode restore runs on the lab only (it needs a throw-away MariaDB at the site's "
                           "address and the lab's bad migration): run it with the lab's drorch.yaml, beside "
                           "lab.json") from None


def _quoted(table: str) -> str:
    schema, name = table.split(".")
    return f"`{schema}`.`{name}`"


def _create(db: MySQLClient, table: str) -> dict[str, Any]:
    db.execute(f"CREATE TABLE {_quoted(table)} (id INT AUTO_INCREMENT PRIMARY KEY, ref VARCHAR(64) NOT NULL, "
               "at DOUBLE NOT NULL)")
    return {"table": table}


def _base(estate: Estate, store: Store) -> dict[str, Any]:
    """The newest base backup, or a new one when the store has none (what the restore starts from)."""
    found = catalogue.manifests(store)
    taken = not found
    manifest = base.take(estate, store=store) if taken else found[-1]
    return {"base_backup": manifest.id, "base_backup_taken": taken, "base_backup_gtid": manifest.gtid_position,
            "base_backup_age_seconds": round(time.time() - manifest.snapshot_time, 3)}


def _find_drop(store: Store, table: str, at: float) -> dict[str, Any]:
    """The transaction that dropped ``table`` in the shipped binlogs, and the GTID position just before it."""
    heads = {s.stream: (s.file, s.offset) for s in read_state(store).streams.values()}
    shipped = catalogue.read_transactions(store, catalogue.segments(store), at - FIND_MARGIN, None, heads)
    name = table.split(".")[1].encode()
    drops = [g for g in shipped.groups.values() if any(
        (text := events.statement(e)) is not None and text.lstrip().upper().startswith(b"DROP TABLE")
        and name in text for e in g.events)]
    if len(drops) != 1:
        raise OperationFailed(f"found {len(drops)} transactions dropping {table} in the shipped binlogs after "
                              f"{restore.iso(at - FIND_MARGIN)} (expected one)")
    drop = drops[0]
    if drop.seq <= 1:
        raise OperationFailed(f"the drop of {table} is the first transaction of domain {drop.domain}: there is "
                              "nothing before it to restore")
    return {"migration_gtid": drop.gtid, "migration_event_time": drop.timestamp,
            "goal": str(_just_before(drop, shipped.groups))}


def _just_before(drop: Group, groups: dict[tuple[int, int], Group]) -> GtidPosition:
    """The drop's domain up to the transaction before it; other domains up to their newest one no later than it."""
    reached: dict[int, tuple[int, int]] = {}  # domain -> (seq, server)
    for (domain, seq), group in groups.items():
        if domain != drop.domain and group.timestamp <= drop.timestamp and seq > reached.get(domain, (0, 0))[0]:
            reached[domain] = (seq, group.server)
    previous = groups.get((drop.domain, drop.seq - 1))
    reached[drop.domain] = (drop.seq - 1, previous.server if previous is not None else drop.server)
    return GtidPosition(tuple(sorted((domain, server, seq) for domain, (seq, server) in reached.items())))


def _reach(store: Store) -> dict[str, Any]:
    store.check()
    return {"store": store.where("")}


def _scratch(lab: Any, estate: Estate, to: str, holder: dict[str, MySQLClient]) -> dict[str, Any]:
    """A throw-away MariaDB at ``to``'s address (into ``holder``); refused if it were one of the estate's servers."""
    from drorch.lab import scratch

    bubble = scratch.start(lab, to)
    address = (bubble.db.address.host, bubble.db.address.port)
    mine = [site for site, s in estate.config.sites.items() if (s.mysql.host, s.mysql.port) == address]
    if mine:
        raise RefusedForSafety(f"the scratch server {address[0]}:{address[1]} is {mine[0]}'s own database; "
                               "nothing was restored")
    holder["db"] = bubble.db
    return {"database": f"{address[0]}:{address[1]}"}


def _check(db: MySQLClient, table: str, client: _Client) -> dict[str, Any]:
    """Every row the client wrote before the migration, looked for in the restored copy; the marker must be there."""
    if not db.query("SELECT 1 AS x FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
                    tuple(table.split("."))):
        raise OperationFailed(f"the restored copy has no {table}: the restore did not undo the migration")
    rows = {str(r["ref"]): float(r["at"]) for r in db.query(f"SELECT ref, at FROM {_quoted(table)}")}
    if client.marker not in rows:
        raise OperationFailed(f"the marker row {client.marker} is not in the restored copy of {table}")
    missing = [(ref, at) for ref, at in client.written if ref not in rows]
    return {"verified_at": time.time(), "rows_restored": len(rows), "rows_written": len(client.written),
            "rows_missing": len(missing), "oldest_missing_at": min((at for _r, at in missing), default=None),
            "newest_restored_at": max(rows.values())}


def _figures(at: float, checked: dict[str, Any], client: _Client, shipped: dict[str, Any], found: dict[str, Any],
             restored: dict[str, Any]) -> dict[str, Any]:
    """Time to restore from the migration; data lost up to it (from the oldest missing row, else the newest
    restored one)."""
    since = checked["oldest_missing_at"] if checked["rows_missing"] else checked["newest_restored_at"]
    return {
        "time_to_restore_seconds": round(checked["verified_at"] - at, 3),
        "shipping_lag_seconds": shipped.get("lag_seconds"), "restore_seconds": restored["seconds"],
        "data_loss_seconds": round(max(0.0, at - since), 3), "rows_written": checked["rows_written"],
        "rows_missing": checked["rows_missing"], "rows_restored": checked["rows_restored"],
        "writes_failed_after_migration": client.failed, "migration_gtid": found["migration_gtid"],
        "restored_to_gtid": restored["position"], "replayed_transactions": restored["transactions"],
        "restored_from_backup": restored["base"]}


def _judge(config: Config, figures: dict[str, Any]) -> dict[str, dict[str, Any]]:
    rto, rpo = config.objectives.rto_seconds, config.objectives.rpo_seconds
    took, lost = figures["time_to_restore_seconds"], figures["data_loss_seconds"]
    return {"rto": {"objective_seconds": rto, "measured_seconds": took, "met": took <= rto},
            "rpo": {"objective_seconds": rpo, "measured_seconds": lost,
                    "met": lost <= rpo and not (figures["rows_missing"] and rpo == 0)}}


def _drop_leftover(estate: Estate, table: str) -> dict[str, Any]:
    """The drill stopped before its migration: drop the table on the primary (the drop replicates everywhere)."""
    primary = observe(estate).primary
    admin_client(estate, primary).execute(f"DROP TABLE IF EXISTS {_quoted(table)}")
    return {"dropped_on": primary}


def _gone(estate: Estate, table: str) -> dict[str, Any]:
    """The drop reached every site that answers (replicas apply it within a second or so)."""
    schema, name = table.split(".")
    deadline = time.monotonic() + GONE_TIMEOUT
    while True:
        left = [site for site in estate.config.sites if _has(admin_client(estate, site), schema, name)]
        if not left:
            return {"gone": True}
        if time.monotonic() > deadline:
            raise OperationFailed(f"{table} is still on {', '.join(left)} {GONE_TIMEOUT:g} s after it was dropped "
                                  f"on the primary: is replication running? Drop it there by hand")
        time.sleep(0.2)


def _has(db: MySQLClient, schema: str, name: str) -> bool:
    if not db.ping():
        return False
    return bool(db.query("SELECT 1 AS x FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
                         (schema, name)))


def _as_before(estate: Estate, before: dict[str, Any]) -> dict[str, Any]:
    """Roles, sources and DNS as the drill found them: it moved nothing, and must be seen not to have."""
    now = fingerprint(estate)
    if now != before:
        raise OperationFailed(f"the restore drill changed the estate: before {before}, now {now}; check "
                              "`drorch status` and put it back by hand")
    return {"unchanged": True}
