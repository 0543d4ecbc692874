"""``backup verify``: restore a base backup into a throw-away MariaDB and prove it holds what the manifest says.

A backup nobody restored is a hope. Verification downloads the backup (its SHA-256
checked), loads it into a scratch server (on the lab, ``drorch.lab.scratch`` at
the source site's address; elsewhere any empty server given with ``into``), and
compares every table's row count and content checksum with those read from the
source at the backup's own GTID position, and the GTID position the dump restores.
The result is written next to the backup (``verified.json``) so ``backup list``
and ``serve`` can show when each backup was last proven.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from drorch.backup import catalogue, layout, target
from drorch.backup.checks import SNAPSHOT_SQL, read_checks
from drorch.backup.layout import Manifest
from drorch.backup.store import ChecksumMismatch, Store, gunzip_chunks, read_chunks
from drorch.errors import InvalidInput, OperationFailed
from drorch.providers.estate import Estate
from drorch.providers.mysql.client import MySQLClient
from drorch.providers.mysql.gtid import GtidPosition

Say = Callable[[str], None]


@dataclass(frozen=True)
class Verified:
    backup: str
    ok: bool
    problems: list[str]
    tables_checked: int
    rows_checked: int
    gtid_position: str
    server: str
    seconds: float
    at: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def pick(store: Store, backup_id: str | None) -> Manifest:
    found = catalogue.manifests(store)
    if not found:
        raise InvalidInput(f"there is no base backup in {store.where('base/')} to verify")
    if backup_id is None:
        return found[-1]
    for manifest in found:
        if manifest.id == backup_id:
            return manifest
    raise InvalidInput(f"no backup '{backup_id}' in {store.where('base/')} (newest: {found[-1].id})")


def verify(estate: Estate, backup_id: str | None = None, into: MySQLClient | None = None, store: Store | None = None,
           say: Say | None = None) -> Verified:
    """Verify ``backup_id`` (default: the newest); ``into`` an empty server, else a lab scratch server."""
    store = store or Store(estate.config)
    store.check()
    manifest = pick(store, backup_id)
    if into is not None:
        return _verify_into(store, manifest, into, say)
    from drorch.drill.harness import lab_of
    from drorch.lab import scratch

    try:
        lab = lab_of(estate)
    except InvalidInput:
        raise InvalidInput("backup verify needs a throw-away server: on the lab it starts one itself; elsewhere "
                           "pass --into HOST:PORT (an empty server the admin account may overwrite)") from None
    site = manifest.site if manifest.site in lab.state.sites else next(iter(lab.state.sites))
    (say or (lambda _m: None))(f"starting a scratch MariaDB at {site}'s address")
    bubble = scratch.start(lab, site)
    try:
        return _verify_into(store, manifest, bubble.db, say)
    finally:
        scratch.stop(lab, site)


def _verify_into(store: Store, manifest: Manifest, db: MySQLClient, say: Say | None) -> Verified:
    tell = say or (lambda _m: None)
    started = time.monotonic()
    problems: list[str] = []
    checked = rows = 0
    position = ""
    try:
        with tempfile.TemporaryDirectory(prefix="drorch-verify-") as tmp:
            dump = Path(tmp) / "dump.sql.gz"
            tell(f"downloading backup {manifest.id} ({manifest.size / 1e6:.1f} MB)")
            store.download(manifest.object_key, dump, manifest.sha256)
            target.empty(db)
            with open(dump, "rb") as handle:
                target.load(db, gunzip_chunks(read_chunks(handle)), f"backup {manifest.id}", None)
        position = str(db.query("SELECT @@GLOBAL.gtid_slave_pos AS p")[0]["p"] or "")
        checked, rows = _compare(db, manifest, problems)
    except (ChecksumMismatch, OperationFailed) as exc:
        problems.append(str(exc))
    if not problems and GtidPosition.parse(position) != GtidPosition.parse(manifest.gtid_position):
        problems.append(f"the restored GTID position is {position or 'empty'}, the manifest says "
                        f"{manifest.gtid_position}")
    result = Verified(manifest.id, not problems, problems, checked, rows, position,
                      f"{db.address.host}:{db.address.port}", round(time.monotonic() - started, 3), time.time())
    store.put_json(layout.verified_key(manifest.id), result.to_json())
    return result


def _compare(db: MySQLClient, manifest: Manifest, problems: list[str]) -> tuple[int, int]:
    """Every table's rows and checksum against the manifest; returns (tables, rows) checked."""
    if not manifest.tables:
        problems.append(f"backup {manifest.id} recorded no table checks (taken from a primary under writes?): "
                        "only its checksum and GTID position could be verified")
        return 0, 0
    with db.connection(read_timeout=3600) as conn, conn.cursor() as cur:
        cur.execute(SNAPSHOT_SQL)
        restored = read_checks(cur, manifest.schemas)
    for name, expected in sorted(manifest.tables.items()):
        found = restored.get(name)
        if found is None:
            problems.append(f"table {name} is missing from the restored copy")
        elif found.rows != expected.rows:
            problems.append(f"table {name} has {found.rows} rows restored, {expected.rows} at backup time")
        elif found.checksum != expected.checksum:
            problems.append(f"table {name} has other contents than at backup time (checksum {found.checksum}, "
                            f"recorded {expected.checksum})")
    for name in sorted(set(restored) - set(manifest.tables)):
        problems.append(f"table {name} is in the restored copy but not in the manifest")
    return len(restored), sum(t.rows for t in restored.values())
