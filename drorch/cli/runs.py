"""``drorch runs list|show``: the journal of failovers (and, later, drills)."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import typer

from drorch.cli.output import ConfigOption, Output, OutputOption, emit_json, handle_errors
from drorch.state.journal import Journal

app = typer.Typer(help="The journal: every run and its steps.", no_args_is_help=True)

def _journal(config: Path | None) -> Journal:
    from drorch.config import find_config_path, load_config
    from drorch.state.backends import open_journal

    return open_journal(load_config(find_config_path(config)))


@app.command("list")
@handle_errors
def list_runs(
    limit: int = typer.Option(20, "--limit", min=1, max=1000),
    config: Path | None = ConfigOption,
    output: Output = OutputOption,
) -> None:
    """The most recent runs, newest first."""
    runs = _journal(config).runs(limit)
    if output == Output.json:
        emit_json({"runs": [{k: v for k, v in asdict(r).items() if k != "steps"} for r in runs]})
        return
    for r in runs:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.started_at))
        print(f"{r.run_id}  {when}  {r.operation:9} {r.status:12} {r.summary.get('from', '?')} -> "
              f"{r.summary.get('to', '?')}  RTO {r.summary.get('rto_seconds', '-')} s")


@app.command("show")
@handle_errors
def show_run(
    run_id: str = typer.Argument(..., help="a run id from `drorch runs list`"),
    config: Path | None = ConfigOption,
    output: Output = OutputOption,
) -> None:
    """One run with every step, its timing and outcome."""
    from drorch.errors import InvalidInput

    record = _journal(config).run(run_id)
    if record is None:
        raise InvalidInput(f"no run '{run_id}' in the journal; see `drorch runs list`")
    if output == Output.json:
        emit_json(asdict(record))
        return
    print(f"{record.run_id} {record.operation} {record.status}: {record.summary}")
    for step in record.steps:
        duration = "-" if step.duration_seconds is None else f"{step.duration_seconds:.3f} s"
        error = f"  ({step.error})" if step.error else ""
        print(f"  {step.index:2} {step.status:9} {duration:>9}  {step.name}{error}")
        for note in step.detail.get("notes", []):
            print(f"       note: {note}")
