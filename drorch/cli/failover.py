"""``drorch failover --to SITE``: what on-call types at 3 a.m."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from drorch.cli.output import Output, OutputOption, emit_json, handle_errors, progress

if TYPE_CHECKING:
    from drorch.config.schema import Config
    from drorch.engine.failover import FailoverResult
    from drorch.providers.estate import Estate

ConfigOption = typer.Option(None, "--config", "-c", help="drorch.yaml (default: $DRORCH_CONFIG, then ./drorch.yaml)")


@handle_errors
def failover_command(
    to: str = typer.Option(..., "--to", help="site to make primary"),
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation"),
    playbook: Path | None = typer.Option(None, "--playbook", help="run this playbook instead of the built-in sequence"),
    config: Path | None = ConfigOption,
    output: Output = OutputOption,
) -> None:
    """Move the primary database and the service name to SITE (switchover when the primary is healthy)."""
    from drorch.config import find_config_path, load_config
    from drorch.engine.failover import failover
    from drorch.providers.estate import Estate
    from drorch.state.backends import open_journal

    cfg = load_config(find_config_path(config))
    cfg.site(to)
    _confirm(yes, f"Fail over {cfg.service} to {to}?")

    if playbook is not None:
        _with_playbook(playbook, Estate(cfg), to, cfg, output)
        return
    result = failover(Estate(cfg), to, progress, open_journal(cfg))
    _report(result, output)


def _confirm(yes: bool, question: str) -> None:
    from drorch.errors import InvalidInput

    if yes:
        return
    if not typer.get_text_stream("stdin").isatty():
        raise InvalidInput("--yes is required when not running on a terminal (no one can confirm)")
    typer.confirm(question, abort=True)


def _report(result: FailoverResult, output: Output, extra: dict[str, Any] | None = None) -> None:
    if output == Output.json:
        emit_json({**result.to_json(), **(extra or {})})
    else:
        rpo = "unknown" if result.rpo_seconds is None else f"{result.rpo_seconds:.3f} s"
        print(f"{result.kind} {result.from_site} -> {result.to_site}: {result.status}; "
              f"RTO {result.rto_seconds} s, RPO {rpo}, lost transactions {result.lost_transactions}")
        for note in result.notes:
            print(f"  note: {note}")
    if result.status != "succeeded":
        raise typer.Exit(1)


@handle_errors
def failback_command(
    to: str | None = typer.Option(None, "--to", help="home site (default: the config's role: primary site)"),
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation"),
    config: Path | None = ConfigOption,
    output: Output = OutputOption,
) -> None:
    """Return to the home primary: reprotect it (rejoin, checked for lost transactions), then switch over."""
    from drorch.config import find_config_path, load_config
    from drorch.engine.failback import failback
    from drorch.providers.estate import Estate
    from drorch.state.backends import open_journal

    cfg = load_config(find_config_path(config))
    home = to or cfg.primary_site
    cfg.site(home)
    _confirm(yes, f"Fail {cfg.service} back to {home}?")
    result = failback(Estate(cfg), progress, open_journal(cfg), home)
    done = result.reprotected
    if output != Output.json:
        state = "already a replica" if done.already else f"rejoined as a replica of {done.source}"
        print(f"reprotect {done.site}: {state}" + (f"; the failover that left it lost {done.rpo_seconds} s "
                                                   f"of writes by heartbeats" if done.rpo_seconds is not None else ""))
    _report(result.switchover, output, {"reprotect": {
        "site": done.site, "source": done.source, "already": done.already,
        "failover_rpo_seconds": done.rpo_seconds, "completed_failover_run": result.completed_run}})


def _with_playbook(path: Path, estate: Estate, to: str, cfg: Config, output: Output) -> None:
    """``failover --playbook``: the same contract (JSON fields, exit codes) through a playbook."""
    from drorch.engine.executor import Options, execute
    from drorch.engine.playbook.loader import load_playbook
    from drorch.measure.objectives import data_loss
    from drorch.state.backends import open_journal

    book = load_playbook(path)
    given = {"to": to} if "to" in book.parameters else {}
    result = execute(book, estate, given, Options(approvals=frozenset({"*"})), open_journal(cfg), progress,
                     str(path.resolve()))
    loss = data_loss(estate, to, result.steps) if result.status == "succeeded" else None
    document = {
        "run_id": result.run_id, "status": result.status, "from": result.variables.get("from"), "to": to,
        "playbook": book.name, "rto_seconds": result.elapsed_seconds if result.status == "succeeded" else None,
        "rpo_seconds": loss.rpo_seconds if loss else None,
        "lost_transactions": loss.lost_transactions if loss else None, "error": result.error,
        "steps": [{"name": s.name, "status": s.status, "duration_seconds": round(s.duration_seconds, 3),
                   "detail": s.detail, "error": s.error} for s in result.steps],
    }
    if output == Output.json:
        emit_json(document)
    else:
        print(f"{book.name} {document['from']} -> {to}: {result.status}; RTO {document['rto_seconds']} s, "
              f"RPO {document['rpo_seconds'] if document['rpo_seconds'] is not None else 'unknown'}")
    if result.status != "succeeded":
        raise typer.Exit(1)
