"""``drorch drill`` and ``drorch report``: rehearse, measure against ground truth, read the result."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from drorch.cli.output import ConfigOption, Output, OutputOption, confirm, emit_json, handle_errors, progress


@handle_errors
def drill_command(
    to: str = typer.Option(..., "--to", help="the site to fail over to and back from (restore: the site whose "
                           "address the scratch server takes)"),
    mode: str = typer.Option("switchover", "--mode", help=(
        "switchover (planned there and back, under load), chaos (break the primary: on the lab a SIGKILL, "
        "elsewhere the config's chaos.fault; automatic failover, fail back), isolated (promote a scratch copy of "
        "SITE's replica; nothing moves) or restore (a drill table dropped on the primary, restored from the "
        "backups into a scratch server at SITE)")),
    load: float = typer.Option(20.0, "--load", min=1.0, max=500.0, help="client writes per second during the drill"),
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation"),
    rebuild: bool = typer.Option(False, "--rebuild", help=(
        "chaos mode: if the kill left the home site holding a transaction no replica received, rebuild it from "
        "the new primary on the way back (discards it) instead of stopping")),
    config: Path | None = ConfigOption,
    output: Output = OutputOption,
) -> None:
    """Rehearse a failover: move the service to SITE and back under load, measure, judge the objectives.

    Exits 1 when an objective is missed, so cron and CI can alert.
    """
    from drorch.config import find_config_path, load_config
    from drorch.drill.report import markdown
    from drorch.drill.switchover import drill
    from drorch.engine.executor import Options
    from drorch.errors import InvalidInput
    from drorch.providers.estate import Estate
    from drorch.state.backends import holding_lease, open_journal

    if mode not in ("switchover", "chaos", "isolated", "restore"):
        raise InvalidInput(f"--mode {mode}: choose switchover, chaos, isolated or restore")
    cfg = load_config(find_config_path(config))
    cfg.site(to)
    if mode == "isolated":
        from drorch.drill.isolated import isolated_drill

        confirm(yes, f"Isolated drill: scale {to} up, promote a scratch copy of its replica, smoke-test it, clean up "
                     "(DNS and roles are not touched)?")
        with holding_lease(cfg):
            result = isolated_drill(Estate(cfg), to, open_journal(cfg), progress)
    elif mode == "restore":
        from drorch.drill.restore import restore_drill

        confirm(yes, f"Restore drill: create a table of the drill's own on the primary, drop it (a bad migration), "
                     f"restore it from the backups into a scratch server at {to}'s address, clean up?")
        with holding_lease(cfg):  # the drill ships binlogs itself: no leader may ship the same stream meanwhile
            result = restore_drill(Estate(cfg), to, open_journal(cfg), progress)
    elif mode == "chaos":
        from drorch.drill.chaos import chaos_drill

        fault = "the configured fault (chaos.fault)" if cfg.chaos is not None else "a SIGKILL of its database"
        confirm(yes, f"Chaos drill: BREAK {cfg.primary_site} with {fault}, let drorch fail {cfg.service} over to "
                     f"{to} on its own, then fail back?")
        result = chaos_drill(Estate(cfg), to, load, open_journal(cfg), progress, rebuild=rebuild)  # takes the lease
    else:
        confirm(yes, f"Drill: fail {cfg.service} over to {to} and back to {cfg.primary_site}?")
        with holding_lease(cfg) as lease:
            options = Options(approvals=frozenset({"*"}), interactive=sys.stdin.isatty(), lease=lease)
            result = drill(Estate(cfg), to, load, open_journal(cfg), progress, options)
    if output == Output.json:
        emit_json(result.to_json())
    else:
        record = open_journal(cfg).run(result.run_id)
        assert record is not None
        print(markdown(record))
    if result.status != "succeeded":
        raise typer.Exit(1)


@handle_errors
def report_command(
    run_id: str = typer.Argument(..., help="a drill or failover run (see `drorch runs list`)"),
    format: str = typer.Option("md", "--format", help="md, json, or html (one self-contained file with a timeline)"),
    config: Path | None = ConfigOption,
) -> None:
    """The report of a drill or failover run: objectives against what was measured, and every step."""
    from drorch.config import find_config_path, load_config
    from drorch.drill.report import document, markdown
    from drorch.errors import InvalidInput
    from drorch.state.backends import open_journal

    if format not in ("md", "json", "html"):
        raise InvalidInput(f"--format {format}: choose md, json or html")
    cfg = load_config(find_config_path(config))
    journal = open_journal(cfg)
    record = journal.run(run_id)
    if record is None:
        raise InvalidInput(f"no run '{run_id}' in the journal; see `drorch runs list`")
    if format == "json":
        emit_json(document(record))
    elif format == "html":
        from drorch.drill.html import render

        sys.stdout.write(render(record, journal))
    else:
        print(markdown(record))


@handle_errors
def drills_command(config: Path | None = ConfigOption, output: Output = OutputOption) -> None:
    """The drills `drorch serve` runs on schedule: last result and next run (UTC)."""
    import time

    from drorch.config import find_config_path, load_config
    from drorch.drill.schedule import states
    from drorch.state.backends import open_journal

    cfg = load_config(find_config_path(config))
    rows = [{"name": s.drill.name, "to": s.drill.to, "mode": s.drill.mode, "schedule": s.drill.schedule,
             "last_run": s.last.run_id if s.last else None, "last_status": s.last.status if s.last else None,
             "next_run": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(s.next_at))}
            for s in states(cfg, open_journal(cfg), time.time())]
    if output == Output.json:
        emit_json({"drills": rows})
        return
    if not rows:
        print("no drills configured (add `drills:` to the config)")
    for row in rows:
        last = f"{row['last_status']} ({row['last_run']})" if row["last_run"] else "never run"
        print(f"{row['name']}: {row['mode']} to {row['to']}, '{row['schedule']}'; last {last}; next {row['next_run']}")
