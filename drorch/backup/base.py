"""Base backups: a consistent logical dump of one site's database, streamed compressed into the store.

The source is a replica by default, so the primary feels nothing. Its applier is
held for the instant it takes ``mariadb-dump --single-transaction`` to open its
snapshot, and drorch opens a second snapshot at the same GTID position in that
instant: the per-table row counts and checksums read from it describe exactly the
data in the dump, which is what ``backup verify`` compares a restored copy with.
The dump never touches disk: it is gzip-compressed, hashed and uploaded as it is
read (multipart), and the manifest is written last, so a backup that stopped
half-way is never restored from. The password reaches ``mariadb-dump`` through a
0600 option file, never its command line.
"""

from __future__ import annotations

import concurrent.futures
import re
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import drorch
from drorch.backup import layout
from drorch.backup.checks import SNAPSHOT_SQL, read_checks, snapshot_position
from drorch.backup.layout import Manifest, TableCheck
from drorch.backup.store import Store, backups_of, gzip_chunks
from drorch.engine.topology import observe
from drorch.errors import InvalidInput, OperationFailed, RefusedForSafety
from drorch.providers.estate import Estate
from drorch.providers.mysql.admin import admin_client, grant_statements, read_grants
from drorch.providers.mysql.client import MySQLClient
from drorch.replication.rebuild import client_programs, error_tail, options_file, user_schemas
from drorch.replication.roles import semi_sync_partner

HEAD_LIMIT = 256 << 10  # the dump states its position in its first lines
CHUNK = 1 << 20
CHECKS_TIMEOUT = 3600.0

Progress = Callable[[int, float], None]
"""Called with the dump bytes read so far and the seconds since the dump started."""


def choose_source(estate: Estate, requested: str | None) -> str:
    """``--site``, else ``backups.source``, else a replica that answers (one outside the primary's semi-sync pair
    first: its applier may pause without a standby's readiness ever depending on it)."""
    config = estate.config
    chosen = requested or backups_of(config).source
    if chosen is not None:
        config.site(chosen)
        return chosen
    topology = observe(estate)
    partner = semi_sync_partner(estate, topology.primary)
    replicas = [site for site, state in topology.states.items()
                if state is not None and state.replica is not None and site != topology.primary]
    if not replicas:
        raise RefusedForSafety("no replica answers to take the backup from; name one with --site (the primary "
                               "works too, with its writes going on during the snapshot)")
    return sorted(replicas, key=lambda site: site == partner)[0]


def _preflight(db: MySQLClient, site: str) -> None:
    grants = read_grants(db)
    missing = list(dict.fromkeys(grants.missing(db.flavor.requirement("dump_source"))))
    if missing:
        grants_sql = "; ".join(grant_statements(grants.account, missing))
        raise RefusedForSafety(f"{site} as {grants.account} cannot take a consistent dump: run {grants_sql} "
                               "(or set data.mysql.admin_user)")


class _Dump:
    """The dump's output as chunks; calls ``on_position`` once with the snapshot's GTID position."""

    def __init__(self, process: subprocess.Popen[bytes], pattern: str, on_position: Callable[[str], None],
                 progress: Progress | None, db: MySQLClient) -> None:
        self.db = db
        self.process, self.pattern = process, re.compile(pattern)
        self.on_position, self.progress = on_position, progress
        self.raw_size = 0
        self.position: str | None = None
        self._head = b""
        self._started = time.monotonic()

    def __iter__(self) -> Iterator[bytes]:
        assert self.process.stdout is not None
        last = 0.0
        while chunk := self.process.stdout.read(CHUNK):
            self.raw_size += len(chunk)
            if self.position is None:
                self._look(chunk)
            now = time.monotonic() - self._started
            if self.progress is not None and now - last >= 0.5:
                self.progress(self.raw_size, now)
                last = now
            yield chunk
        if self.position is None:
            self._found("")

    def _look(self, chunk: bytes) -> None:
        self._head += chunk
        match = self.pattern.search(self._head.decode("utf-8", "replace"))
        if match is not None:
            self._found(match.group(1) if len(match.groups()) == 1 else self.binlog_gtid_pos(*match.groups()))
        elif len(self._head) > HEAD_LIMIT:
            self._found("")

    def binlog_gtid_pos(self, name: str, offset: str) -> str:
        """The GTID position at a binlog file and offset of the source."""
        found = self.db.query("SELECT BINLOG_GTID_POS(%s, %s) AS p", (name, int(offset)))
        return str(found[0]["p"] or "")

    def _found(self, position: str) -> None:
        self.position = position
        self._head = b""
        self.on_position(position)


def take(estate: Estate, site: str | None = None, progress: Progress | None = None,
         store: Store | None = None) -> Manifest:
    """Back up ``site`` (default: see ``choose_source``) into the store; returns the manifest written."""
    config = estate.config
    backups = backups_of(config)
    store = store or Store(config)
    store.check()
    site = choose_source(estate, site)
    db = admin_client(estate, site)
    programs = client_programs(db.flavor)
    _preflight(db, site)
    schemas = user_schemas(db)
    if not schemas:
        raise InvalidInput(f"{site} has no user schemas to back up")
    backup_id = layout.new_backup_id()
    key = layout.dump_key(backup_id)
    version = str(db.query("SELECT VERSION() AS v")[0]["v"])
    tool = subprocess.run([programs[0], "--version"], capture_output=True, text=True, check=False).stdout.strip()
    started = time.time()
    paused = _pause(db)
    checks_conn = db.open(read_timeout=CHECKS_TIMEOUT)
    try:
        cur = checks_conn.cursor()
        cur.execute(SNAPSHOT_SQL)
        checks_position = snapshot_position(cur)
        with tempfile.TemporaryDirectory(prefix="drorch-backup-") as tmp:
            stored, dump, snapshot_time, checks = _stream(db, store, key, programs[0], schemas, Path(tmp), paused,
                                                          cur, backups.compression_level, progress)
    finally:
        if paused:
            _resume(db)
        checks_conn.close()
    position = dump.position or ""
    manifest = Manifest(
        id=backup_id, service=config.service, site=site, server=f"{db.address.host}:{db.address.port}",
        server_version=version, tool=tool, drorch_version=drorch.__version__, started_at=round(started, 3),
        snapshot_time=round(snapshot_time, 3), finished_at=round(time.time(), 3), gtid_position=position,
        object_key=key, size=stored.size, raw_size=dump.raw_size, sha256=stored.sha256, compression="gzip",
        schemas=schemas, tables=checks if checks_position == position else {},
        checks_position=checks_position if checks_position == position else "")
    store.put_json(layout.manifest_key(backup_id), manifest.to_json())
    return manifest


def _pause(db: MySQLClient) -> bool:
    """Hold a replica's applier (so the dump's snapshot and drorch's share one position); False on a primary."""
    if db.state().replica is None:
        return False
    db.execute(db.flavor.pause_apply_sql())
    return True


def _resume(db: MySQLClient) -> None:
    db.execute(db.flavor.resume_apply_sql())


def _stream(db: MySQLClient, store: Store, key: str, program: str, schemas: list[str], tmp: Path, paused: bool,
            cur: Any, level: int, progress: Progress | None) -> tuple[Any, _Dump, float, dict[str, TableCheck]]:
    """Run the dump into the store; the table checks run meanwhile on drorch's own snapshot."""
    flavor = db.flavor
    options = options_file(tmp / "source.cnf", db.address, flavor, [])
    snapshot_time = [0.0]
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    checks: concurrent.futures.Future[dict[str, TableCheck]] | None = None

    def on_position(position: str) -> None:
        nonlocal checks
        snapshot_time[0] = time.time()
        if paused:
            _resume(db)
        checks = pool.submit(read_checks, cur, schemas)

    with open(tmp / "dump.err", "wb+") as errors:
        process = subprocess.Popen([program, f"--defaults-extra-file={options}", *flavor.dump_args(schemas)],
                                   stdout=subprocess.PIPE, stderr=errors, stdin=subprocess.DEVNULL)
        dump = _Dump(process, flavor.dump_position_pattern(), on_position, progress, db)
        try:
            stored = store.upload_stream(key, gzip_chunks(dump, level))
        except BaseException:
            process.kill()
            raise
        finally:
            process.wait()
            pool.shutdown(wait=True)
        if process.returncode != 0:
            store.delete([key])
            raise OperationFailed(f"{Path(program).name} of {db.address.name} exited {process.returncode}: "
                                  f"{error_tail(errors)}; no backup was recorded")
    found = checks.result() if checks is not None else {}
    return stored, dump, snapshot_time[0], found
