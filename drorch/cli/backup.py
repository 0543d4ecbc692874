"""``drorch backup ...`` and ``drorch restore mysql``: base backups, binlog shipping, point-in-time restore."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from drorch.cli.output import ConfigOption, Output, OutputOption, confirm, emit_json, handle_errors, info

if TYPE_CHECKING:
    from drorch.providers.estate import Estate

app = typer.Typer(help="Base backups and binlog shipping to object storage; list, verify, prune.",
                  no_args_is_help=True)
restore_app = typer.Typer(help="Point-in-time restore from the backups in object storage.", no_args_is_help=True)


def _estate(config: Path | None) -> Estate:
    from drorch.config import find_config_path, load_config
    from drorch.providers.estate import Estate

    return Estate(load_config(find_config_path(config)))


def _progress(bytes_read: int, seconds: float) -> None:
    info(f"  {bytes_read / 1e6:8.1f} MB in {seconds:6.1f} s")


@app.command("mysql")
@handle_errors
def mysql_command(
    site: str | None = typer.Option(None, "--site", help="site to back up (default: backups.source, else a replica)"),
    config: Path | None = ConfigOption,
    output: Output = OutputOption,
) -> None:
    """A consistent base backup (mariadb-dump --single-transaction) streamed, compressed and checksummed to the
    store, with a manifest: GTID position, size, SHA-256, source, tool version, per-table rows and checksums."""
    from drorch.backup import base

    manifest = base.take(_estate(config), site, _progress)
    doc = manifest.to_json()
    if output == Output.json:
        emit_json(doc)
        return
    info(f"backup {manifest.id} of {manifest.site} at GTID {manifest.gtid_position or '-'}: "
         f"{manifest.raw_size / 1e6:.1f} MB dumped, {manifest.size / 1e6:.1f} MB stored, "
         f"{len(manifest.tables)} tables checked, sha256 {manifest.sha256[:16]}...")


@app.command("ship-binlogs")
@handle_errors
def ship_command(
    once: bool = typer.Option(False, "--once", help="ship what the primary's binlog holds now, then stop"),
    duration: float | None = typer.Option(None, "--duration", min=0.1, help="ship for this many seconds, then stop "
                                          "(default: until interrupted)"),
    config: Path | None = ConfigOption,
    output: Output = OutputOption,
) -> None:
    """Copy the current primary's binary log to the store continuously (follows the primary across failovers)."""
    from drorch.backup.binlogs import Shipper

    shipper = Shipper(_estate(config))
    started = time.monotonic()
    stop = threading.Event()
    if once:
        wall = time.time()
        try:
            deadline = time.monotonic() + 30.0
            shipper.step()
            while time.monotonic() < deadline and (shipper.state.caught_up_at or 0.0) < wall:
                time.sleep(shipper.settings.interval_seconds)
                shipper.step()
        finally:
            shipper.close()
    else:
        if duration is not None:
            timer = threading.Timer(duration, stop.set)
            timer.daemon = True
            timer.start()
        try:
            shipper.run(stop)
        except KeyboardInterrupt:
            stop.set()
    doc = {"segments": shipper.segments_shipped, "bytes": shipper.bytes_shipped,
           "seconds": round(time.monotonic() - started, 3), "rpo_seconds": shipper.rpo_seconds(),
           "state": shipper.state.to_json(), "last_error": shipper.last_error}
    if output == Output.json:
        emit_json(doc)
    else:
        info(f"shipped {doc['segments']} segment(s), {shipper.bytes_shipped / 1e6:.2f} MB of binlog; "
             f"backup RPO now {doc['rpo_seconds']} s" + (f"; last error: {shipper.last_error}"
                                                          if shipper.last_error else ""))
    if shipper.last_error and not shipper.segments_shipped:
        raise typer.Exit(1)


@app.command("list")
@handle_errors
def list_command(config: Path | None = ConfigOption, output: Output = OutputOption) -> None:
    """Base backups (newest first) with their verification, and where binlog shipping stands."""
    from drorch.backup.restore import iso
    from drorch.backup.status import overview

    doc = overview(_estate(config).config)
    if output == Output.json:
        emit_json(doc)
        return
    print(f"{doc['store']}")
    for b in doc["backups"]:
        verified = "-" if b["verified"] is None else ("ok" if b["verified"]["ok"] else "FAILED")
        print(f"  {b['id']}  {b['site']:6} {iso(b['snapshot_time'])}  GTID {b['gtid_position'] or '-':14} "
              f"{b['size'] / 1e6:8.1f} MB  verified: {verified}")
    binlogs = doc["binlogs"]
    through = binlogs["shipped_through"]
    rpo = "-" if doc["rpo_seconds"] is None else f"{doc['rpo_seconds']:.1f} s"
    print(f"binlogs: following {binlogs['current'] or '-'}, {binlogs['segments']} segment(s), shipped through "
          f"{iso(through) if through else '-'}; backup RPO {rpo}"
          + (f"; last error: {binlogs['last_error']}" if binlogs["last_error"] else ""))


@app.command("verify")
@handle_errors
def verify_command(
    backup: str | None = typer.Option(None, "--backup", help="backup id (default: the newest)"),
    into: str | None = typer.Option(None, "--into", metavar="HOST:PORT", help=(
        "an empty throw-away server to restore into (default on the lab: a scratch MariaDB it starts and removes)")),
    config: Path | None = ConfigOption,
    output: Output = OutputOption,
) -> None:
    """Restore a backup into a throw-away MariaDB and check row counts, checksums and GTID position; exit 1 when
    anything differs."""
    from drorch.backup import target, verify

    estate = _estate(config)
    db = target.resolve(estate, into)[1] if into is not None else None
    result = verify.verify(estate, backup, db, say=info)
    if output == Output.json:
        emit_json(result.to_json())
    elif result.ok:
        info(f"backup {result.backup} verified: {result.tables_checked} tables, {result.rows_checked} rows, "
             f"GTID {result.gtid_position or '-'} ({result.seconds:.1f} s)")
    else:
        info(f"backup {result.backup} FAILED verification:\n  " + "\n  ".join(result.problems))
    if not result.ok:
        raise typer.Exit(1)


@app.command("prune")
@handle_errors
def prune_command(
    dry_run: bool = typer.Option(False, "--dry-run", help="show what would be deleted; delete nothing"),
    yes: bool = typer.Option(False, "--yes", help="do not ask for confirmation"),
    config: Path | None = ConfigOption,
    output: Output = OutputOption,
) -> None:
    """Apply backups.retention: keep the newest backup of N days and M weeks, and the binlogs they need."""
    from drorch.backup import retention
    from drorch.backup.store import Store, backups_of

    estate = _estate(config)
    store = Store(estate.config)
    rules = backups_of(estate.config).retention
    planned = retention.prune(store, rules, dry_run=True)
    if not dry_run and (planned.deleted_backups or planned.deleted_segments):
        confirm(yes, f"delete {len(planned.deleted_backups)} backup(s) and {planned.deleted_segments} binlog "
                     "segment(s)?")
        planned = retention.prune(store, rules)
    doc = {"kept": planned.kept, "deleted_backups": planned.deleted_backups,
           "deleted_segments": planned.deleted_segments, "deleted_objects": planned.deleted_objects,
           "binlogs_kept_from": planned.binlogs_kept_from, "dry_run": dry_run}
    if output == Output.json:
        emit_json(doc)
        return
    verb = "would delete" if dry_run else "deleted"
    info(f"kept {len(planned.kept)} backup(s); {verb} {len(planned.deleted_backups)} backup(s) "
         f"({', '.join(planned.deleted_backups) or 'none'}) and {planned.deleted_segments} binlog segment(s)")


@restore_app.command("mysql")
@handle_errors
def restore_command(
    target: str = typer.Option(..., "--target", metavar="SITE|HOST:PORT", help="the server to restore into"),
    to_time: str | None = typer.Option(None, "--to-time", help="ISO 8601 (UTC unless an offset is given) or epoch "
                                       "seconds; transactions stamped in T's second or later are not replayed"),
    to_gtid: str | None = typer.Option(None, "--to-gtid", help="restore up to and including this GTID position"),
    overwrite: bool = typer.Option(False, "--overwrite", help="allow replacing a primary or a server with data"),
    yes: bool = typer.Option(False, "--yes", help="do not ask for confirmation"),
    config: Path | None = ConfigOption,
    output: Output = OutputOption,
) -> None:
    """Restore the newest base backup before the target time (or GTID), then replay the shipped binlogs up to it.
    The restored server is left read-only and replicating from nobody, at the restored GTID position."""
    from drorch.backup import restore
    from drorch.errors import InvalidInput
    from drorch.providers.mysql.gtid import GtidPosition

    if (to_time is None) == (to_gtid is None):
        raise InvalidInput("give exactly one of --to-time T or --to-gtid G")
    if to_time is not None:
        goal = restore.Goal(time=restore.parse_time(to_time))
    else:
        try:
            goal = restore.Goal(gtid=GtidPosition.parse(to_gtid))
        except ValueError:
            raise InvalidInput(f"--to-gtid {to_gtid}: write DOMAIN-SERVER-SEQ[,...], e.g. 0-1-1234") from None
    estate = _estate(config)
    confirm(yes, f"restore {target} to {goal}? Everything on it is replaced")
    result = restore.restore(estate, target, goal, overwrite, say=info)
    if output == Output.json:
        emit_json(result.to_json())
        return
    info(f"restored {result.target} to {result.goal}: backup {result.base} ({result.base_gtid}) + "
         f"{result.transactions} transaction(s), now at GTID {result.position}; {result.seconds:.1f} s "
         f"({result.mb_per_second} MB/s loading the dump)")
