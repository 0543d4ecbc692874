"""``drorch replication status|setup|reprotect``: the MySQL/MariaDB topology, shown, built and repaired."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from drorch.cli.output import ConfigOption, Output, OutputOption, confirm, emit_json, handle_errors, info

if TYPE_CHECKING:
    from drorch.providers.estate import Estate
    from drorch.replication.rebuild import CopyProgress, Rebuilt
    from drorch.replication.status import ReplicationStatus, SiteReplication

app = typer.Typer(help="MySQL/MariaDB replication: status, setup from the config, reprotect or rebuild a site.",
                  no_args_is_help=True)


def _estate(config: Path | None) -> Estate:
    from drorch.config import find_config_path, load_config
    from drorch.providers.estate import Estate

    return Estate(load_config(find_config_path(config)))


@app.command("status")
@handle_errors
def status_command(config: Path | None = ConfigOption, output: Output = OutputOption) -> None:
    """Per site: role, source, threads, GTIDs, heartbeat lag, semi-sync, last errors, errant transactions."""
    from drorch.replication.status import status

    found = status(_estate(config))
    if output == Output.json:
        emit_json(found.to_json())
        return
    from rich.console import Console

    console = Console(width=None if sys.stdout.isatty() else 200)
    console.print(_table(found))
    for note in found.notes:
        console.print(f"  [yellow]![/] {note}", highlight=False)


def _table(found: ReplicationStatus) -> Any:
    from rich.table import Table

    title = f"replication: primary {found.primary or '[red]NONE or SPLIT (' + ', '.join(found.writable) + ')[/]'}"
    table = Table(title=title)
    for column in ("site", "role", "source", "io/sql", "received", "executed", "lag s", "semi-sync", "errant",
                   "last error"):
        table.add_column(column)
    for s in found.sites:
        threads = "-" if s.io_running is None else "/".join("yes" if t else "[red]NO[/]"
                                                             for t in (s.io_running, s.sql_running))
        lag = "-" if s.role in ("primary", "unreachable") else (
            "[red]no heartbeat[/]" if s.lag_seconds is None else f"{s.lag_seconds:.3f}")
        errant = f"[red]{s.errant_count}: {', '.join(s.errant_gtids)}[/]" if s.errant_gtids else "0"
        role = f"[red]{s.role}[/]" if s.role == "unreachable" else s.role
        table.add_row(s.site, role, s.source or "-", threads, s.received_gtid or "-", s.executed_gtid or "-", lag,
                      _semi(s), errant, (s.error or s.last_io_error or s.last_sql_error or "-")[:80])
    return table


def _semi(s: SiteReplication) -> str:
    semi = s.semi_sync
    if not semi:
        return "-"
    if "source_enabled" in semi:
        if not semi["source_enabled"]:
            return "off"
        if not semi["source_active"]:
            return "[red]ON but fell back to async: RPO guarantee gone[/]"
        return f"active, {semi['clients']} ack(s), {semi['wait_point']}"
    return ("acks (active)" if semi["replica_active"] else "acks (not active)") if semi["replica_enabled"] else "off"


@app.command("setup")
@handle_errors
def setup_command(
    dry_run: bool = typer.Option(False, "--dry-run", help="print the statements (passwords masked); change nothing"),
    config: Path | None = ConfigOption,
    output: Output = OutputOption,
) -> None:
    """Make the servers match data.mysql: replication user, read_only replicas on their sources, semi-sync pairs
    with AFTER_SYNC, a writable primary, the heartbeat table. Only what differs is changed; unsafe changes are
    refused (exit 3) before anything is done."""
    from drorch.replication import setup
    from drorch.state.backends import holding_lease

    estate = _estate(config)
    found = setup.plan(estate)
    shown = found.shown(setup.secrets(estate))
    if not dry_run and found.changes:
        with holding_lease(estate.config):
            setup.apply(estate, setup.plan(estate))  # planned again under the lease: the servers may have moved
    if output == Output.json:
        emit_json({"dry_run": dry_run, "primary": found.primary, "after_failover": found.after_failover,
                   "accounts": found.accounts, "changes": shown, "notes": found.notes,
                   "applied": bool(found.changes) and not dry_run})
        return
    accounts = ", ".join(sorted(set(found.accounts.values())))
    print(f"setup plan for primary {found.primary} (as {accounts}): {len(shown)} change(s)")
    for change in shown:
        print(f"  {change['site']}: {change['what']}")
        for statement in change["statements"]:
            print(f"      {statement};")
    for note in found.notes:
        print(f"  note: {note}")
    if not found.changes:
        print(f"nothing to change: every answering replica follows {found.primary}, the primary since a failover"
              if found.after_failover else "nothing to change: the servers match data.mysql")
    elif dry_run:
        print("dry run: nothing was changed")
    else:
        print(f"applied {len(shown)} change(s); replicas run and semi-sync is as configured")


@app.command("reprotect")
@handle_errors
def reprotect_command(
    site: str = typer.Argument(..., help="the site to make a replica of the current primary"),
    rebuild: bool = typer.Option(False, "--rebuild", help=(
        "when the site holds transactions the primary never had, replace its data with a copy of the primary's "
        "(discards them; asks first)")),
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation"),
    config: Path | None = ConfigOption,
    output: Output = OutputOption,
) -> None:
    """Rejoin SITE as a caught-up replica of the current primary; with --rebuild, rebuild it when it diverged.

    Without --rebuild a site holding transactions the primary never had is refused (exit 3), nothing changed.
    """
    from drorch.replication.rebuild import rebuild as rebuild_site
    from drorch.replication.rejoin import Diverged, assess, reprotect
    from drorch.state.backends import holding_lease

    estate = _estate(config)
    try:
        found = assess(estate, site)
    except Diverged as diverged:
        if not rebuild:
            raise
        confirm(yes, f"REBUILD {site} from {diverged.primary}? This discards every database on {site} (all but "
                     f"mysql and sys) and its binlog, including what {diverged.primary} never had: "
                     f"{'; '.join(diverged.lost)}")
        with holding_lease(estate.config):
            rebuilt = rebuild_site(estate, site, diverged.lost, copy_printer() if output != Output.json else None)
        _report_rebuilt(rebuilt, output)
        return
    if not found.already:
        confirm(yes, f"Make {site} a replica of {found.primary}?")
    with holding_lease(estate.config):
        done = reprotect(estate, site)
    if output == Output.json:
        emit_json({"site": done.site, "source": done.source, "already": done.already, "rebuilt": None,
                   "failover_rpo_seconds": done.rpo_seconds})
        return
    print(f"{site}: " + ("already a caught-up replica" if done.already else "rejoined as a replica") + f" of "
          f"{done.source}" + (f"; the failover that left it lost {done.rpo_seconds} s of writes by heartbeats"
                              if done.rpo_seconds is not None else ""))


def _report_rebuilt(rebuilt: Rebuilt, output: Output) -> None:
    if sys.stderr.isatty() and output != Output.json:
        sys.stderr.write("\n")
    if output == Output.json:
        emit_json({"site": rebuilt.site, "source": rebuilt.source, "already": False, "rebuilt": rebuilt.to_json(),
                   "failover_rpo_seconds": rebuilt.rpo_seconds})
        return
    print(f"{rebuilt.site}: rebuilt from {rebuilt.source} in {rebuilt.seconds:.1f} s "
          f"({rebuilt.bytes_copied / 1e6:.1f} MB at {rebuilt.mb_per_second} MB/s), replicating from GTID "
          f"{rebuilt.position or '(empty)'} and caught up")
    if rebuilt.discarded:
        print(f"  discarded: {'; '.join(rebuilt.discarded)}")
    if rebuilt.missing_accounts:
        print(f"  note: accounts are not copied; {rebuilt.source} has these that {rebuilt.site} lacks: "
              f"{', '.join(rebuilt.missing_accounts)}")


def copy_printer() -> CopyProgress:
    """Bytes copied and the rate on stderr: rewritten in place on a terminal, a line every few seconds in a log."""
    shown = [0.0]

    def show(copied: int, seconds: float) -> None:
        rate = copied / 1e6 / seconds if seconds > 0 else 0.0
        text = f"  copied {copied / 1e6:8.1f} MB  {rate:6.1f} MB/s  {seconds:6.1f} s"
        if sys.stderr.isatty():
            sys.stderr.write("\r" + text)
            sys.stderr.flush()
        elif time.monotonic() - shown[0] >= 5.0:
            info(text)
            shown[0] = time.monotonic()

    return show
