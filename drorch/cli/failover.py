"""``drorch failover --to SITE``: what on-call types at 3 a.m."""

from __future__ import annotations

from pathlib import Path

import typer

from drorch.cli.output import Output, OutputOption, emit_json, handle_errors, progress

ConfigOption = typer.Option(None, "--config", "-c", help="drorch.yaml (default: $DRORCH_CONFIG, then ./drorch.yaml)")


@handle_errors
def failover_command(
    to: str = typer.Option(..., "--to", help="site to make primary"),
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation"),
    config: Path | None = ConfigOption,
    output: Output = OutputOption,
) -> None:
    """Move the primary database and the service name to SITE (switchover when the primary is healthy)."""
    from drorch.config import find_config_path, load_config
    from drorch.engine.failover import failover
    from drorch.errors import InvalidInput
    from drorch.providers.estate import Estate
    from drorch.state.backends import open_journal

    cfg = load_config(find_config_path(config))
    cfg.site(to)
    if not yes:
        if not typer.get_text_stream("stdin").isatty():
            raise InvalidInput("--yes is required when not running on a terminal (no one can confirm)")
        typer.confirm(f"Fail over {cfg.service} to {to}?", abort=True)

    result = failover(Estate(cfg), to, progress, open_journal(cfg))
    if output == Output.json:
        emit_json(result.to_json())
    else:
        rpo = "unknown" if result.rpo_seconds is None else f"{result.rpo_seconds:.3f} s"
        print(f"{result.kind} {result.from_site} -> {result.to_site}: {result.status}; "
              f"RTO {result.rto_seconds} s, RPO {rpo}, lost transactions {result.lost_transactions}")
        for note in result.notes:
            print(f"  note: {note}")
    if result.status != "succeeded":
        raise typer.Exit(1)
