"""``drorch failover --to SITE``: what on-call types at 3 a.m."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from drorch.cli.output import (
    ConfigOption,
    ConfirmForceOption,
    Output,
    OutputOption,
    confirm,
    confirm_force,
    emit_json,
    handle_errors,
    info,
    progress,
)
from drorch.cli.replication import copy_printer

if TYPE_CHECKING:
    from drorch.engine.failover import FailoverResult
    from drorch.providers.estate import Estate


@handle_errors
def failover_command(
    to: str = typer.Option(..., "--to", help="site to make primary"),
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation (pre-approves approval steps)"),
    playbook: Path | None = typer.Option(None, "--playbook", help="run this playbook (default: failover-to-SITE.yaml, "
                                                                  "else failover.yaml, in the playbooks directory)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="show the plan (guards, every change); change nothing"),
    force: bool = typer.Option(False, "--force", help=(
        "override guards marked overridable, after typing SITE to confirm (journaled)")),
    confirm_forced: str | None = ConfirmForceOption,
    new: bool = typer.Option(False, "--new", help="start afresh even though an earlier failover never finished"),
    config: Path | None = ConfigOption,
    output: Output = OutputOption,
) -> None:
    """Move the primary database and the service name to SITE (switchover when the primary is healthy)."""
    from drorch.config import find_config_path, load_config
    from drorch.engine.executor import Options, resume_run, unfinished_runs
    from drorch.engine.failover import failover
    from drorch.engine.playbook import library
    from drorch.engine.playbook.loader import load_playbook
    from drorch.errors import RefusedForSafety
    from drorch.providers.estate import Estate
    from drorch.state.backends import holding_lease, open_journal

    cfg = load_config(find_config_path(config))
    cfg.site(to)
    path = playbook or library.choose(cfg, "failover", to)
    book = load_playbook(path)
    if dry_run:
        from drorch.cli.plan import show_plan

        show_plan(book, path, Estate(cfg), {"to": to} if "to" in book.parameters else {}, force, output)
        return
    journal = open_journal(cfg)
    unfinished = [] if new else unfinished_runs(journal, book)
    if unfinished:
        if yes or not sys.stdin.isatty():
            raise RefusedForSafety(f"failover run {unfinished[0]} never finished: `drorch resume {unfinished[0]}` "
                                   "finishes it, or pass --new to start afresh")
        if typer.confirm(f"Failover run {unfinished[0]} never finished. Resume it?", default=True):
            from drorch.cli.playbook import report_playbook

            with holding_lease(cfg) as lease:
                options = Options(approvals=frozenset({"*"}), interactive=True, lease=lease)
                report_playbook(resume_run(journal, unfinished[0], Estate(cfg), options, progress), output)
            return
    confirm(yes, f"Fail over {cfg.service} to {to}?")
    forced = confirm_force(force, to, confirm_forced)
    with holding_lease(cfg) as lease:
        options = Options(approvals=frozenset({"*"}), force=force, interactive=sys.stdin.isatty(), lease=lease)
        _report(failover(Estate(cfg), to, progress, journal, reason=forced or "", playbook=path, options=options),
                output)


def _report(result: FailoverResult, output: Output, extra: dict[str, Any] | None = None) -> None:
    if output == Output.json:
        emit_json({**result.to_json(), **(extra or {})})
    else:
        rpo = "unknown" if result.rpo_seconds is None else f"{result.rpo_seconds:.3f} s"
        why = f" ({result.error})" if result.error else ""
        print(f"{result.kind} {result.from_site} -> {result.to_site} by playbook {result.playbook}: "
              f"{result.status}{why}; RTO {result.rto_seconds} s, RPO {rpo}, "
              f"lost transactions {result.lost_transactions}")
        for note in result.notes:
            print(f"  note: {note}")
    if result.status != "succeeded":
        if result.error:
            info(f"error: {result.error}")
        raise typer.Exit(result.exit_code or 1)


@handle_errors
def failback_command(
    to: str | None = typer.Option(None, "--to", help="home site (default: the config's role: primary site)"),
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation"),
    rebuild: bool = typer.Option(False, "--rebuild", help=(
        "when the home site holds transactions the primary never had, rebuild it from the primary first "
        "(discards them; asks first)")),
    config: Path | None = ConfigOption,
    output: Output = OutputOption,
) -> None:
    """Return to the home primary: reprotect it (rejoin, checked for lost transactions), then switch over."""
    from drorch.config import find_config_path, load_config
    from drorch.engine.executor import Options
    from drorch.engine.failback import failback
    from drorch.providers.estate import Estate
    from drorch.state.backends import holding_lease, open_journal

    cfg = load_config(find_config_path(config))
    home = to or cfg.primary_site
    cfg.site(home)
    confirm(yes, f"Fail {cfg.service} back to {home}?")
    estate = Estate(cfg)
    if rebuild:
        _confirm_rebuild(estate, home, yes)
    with holding_lease(cfg) as lease:
        options = Options(approvals=frozenset({"*"}), interactive=sys.stdin.isatty(), lease=lease)
        result = failback(estate, progress, open_journal(cfg), home, options=options, rebuild_diverged=rebuild,
                          copy_progress=copy_printer() if output != Output.json else None)
    if result.rebuilt is not None and output != Output.json:
        print(f"rebuilt {home} from {result.rebuilt.source}: {result.rebuilt.bytes_copied / 1e6:.1f} MB in "
              f"{result.rebuilt.seconds:.1f} s; discarded {'; '.join(result.rebuilt.discarded) or 'nothing'}")
    done = result.reprotected
    if output != Output.json and done is not None:
        state = "already a replica" if done.already else f"rejoined as a replica of {done.source}"
        print(f"reprotect {done.site}: {state}" + (f"; the failover that left it lost {done.rpo_seconds} s "
                                                   f"of writes by heartbeats" if done.rpo_seconds is not None else ""))
    reprotect = None if done is None else {
        "site": done.site, "source": done.source, "already": done.already,
        "failover_rpo_seconds": done.rpo_seconds, "completed_failover_run": result.completed_run,
        "rebuilt": None if result.rebuilt is None else result.rebuilt.to_json()}
    _report(result.switchover, output, {"reprotect": reprotect})


def _confirm_rebuild(estate: Estate, home: str, yes: bool) -> None:
    """Ask before a rebuild discards the home site's data (only when it will happen)."""
    from drorch.errors import DrorchError
    from drorch.replication.rejoin import Diverged, assess

    try:
        assess(estate, home)
    except Diverged as diverged:
        confirm(yes, f"REBUILD {home} from {diverged.primary} first? This discards every database on {home} (all "
                     f"but mysql and sys), including what {diverged.primary} never had: {'; '.join(diverged.lost)}")
    except DrorchError:  # the failback itself reports it
        return
