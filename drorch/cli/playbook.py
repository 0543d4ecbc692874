"""``drorch playbook validate|actions|run|schema``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from drorch.cli.output import (
    ConfigOption,
    ConfirmForceOption,
    Output,
    OutputOption,
    confirm_force,
    emit_json,
    handle_errors,
    info,
    progress,
)

app = typer.Typer(help="Declarative playbooks: validate them, list the actions, run one.", no_args_is_help=True)

@app.command("validate")
@handle_errors
def validate(files: list[Path] = typer.Argument(..., help="playbook files"), output: Output = OutputOption) -> None:
    """Check playbooks completely (schema, actions, parameters, templates, names); exit 2 on any problem."""
    from drorch.engine.playbook.loader import load_playbook
    from drorch.errors import InvalidInput

    problems: list[str] = []
    for file in files:
        try:
            load_playbook(file)
        except InvalidInput as exc:
            problems += exc.problems
    if problems:
        raise InvalidInput(f"{len(problems)} problem(s) in {len(files)} playbook(s):", problems)
    if output == Output.json:
        emit_json({"valid": [str(f) for f in files]})
    else:
        info(f"{len(files)} playbook(s) valid")


@app.command("actions")
@handle_errors
def actions(output: Output = OutputOption) -> None:
    """The action catalogue, generated from the code: each action's parameters and description."""
    from drorch.engine.catalogue import catalogue

    entries: dict[str, dict[str, Any]] = {
        name: {"description": spec.description, "mutating": spec.mutating,
               "parameters": {key: {"type": str(field.annotation).replace("typing.", ""),
                                    "required": field.is_required(),
                                    **({} if field.is_required() else {"default": field.default})}
                              for key, field in spec.params.model_fields.items()}}
        for name, spec in catalogue().items()
    }
    if output == Output.json:
        emit_json({"actions": entries})
        return
    for name, entry in entries.items():
        params = ", ".join(f"{k}{'' if v['required'] else '=' + repr(v.get('default'))}"
                           for k, v in entry["parameters"].items())
        print(f"{name}({params})\n    {entry['description']}")


@app.command("schema")
def schema() -> None:
    """Print the playbook JSON Schema (for editors)."""
    from drorch.engine.playbook.model import Playbook

    sys.stdout.write(json.dumps(Playbook.model_json_schema(by_alias=True), indent=2) + "\n")


@app.command("run")
@handle_errors
def run(
    playbook: Path = typer.Argument(..., help="playbook file"),
    param: list[str] = typer.Option([], "--param", "-p", help="NAME=VALUE (repeatable)"),
    yes: bool = typer.Option(False, "--yes", "-y", help="pre-approve every approval step"),
    dry_run: bool = typer.Option(False, "--dry-run", help="check and show every step; change nothing"),
    force: bool = typer.Option(False, "--force", help=(
        "override guards marked overridable, after typing the playbook's name to confirm (journaled)")),
    confirm_forced: str | None = ConfirmForceOption,
    new: bool = typer.Option(False, "--new", help="start afresh even though an earlier run never finished"),
    config: Path | None = ConfigOption,
    output: Output = OutputOption,
) -> None:
    """Run a playbook against the configured estate."""
    from drorch.config import find_config_path, load_config
    from drorch.engine.executor import Options, execute, unfinished_runs
    from drorch.engine.playbook.loader import load_playbook
    from drorch.errors import RefusedForSafety
    from drorch.providers.estate import Estate
    from drorch.state.backends import holding_lease, open_journal

    given = parse_params(param)
    book = load_playbook(playbook)
    cfg = load_config(find_config_path(config))
    options = Options(dry_run=dry_run, force=force, approvals=frozenset({"*"}) if yes else frozenset(),
                      interactive=sys.stdin.isatty())

    journal = None if dry_run else open_journal(cfg)
    if journal is not None and not new and (unfinished := unfinished_runs(journal, book)):
        raise RefusedForSafety(f"run {unfinished[0]} of {book.name} never finished: finish it with "
                               f"`drorch resume {unfinished[0]}`, or pass --new to start afresh")
    if dry_run:
        from drorch.cli.plan import show_plan

        show_plan(book, playbook, Estate(cfg), given, force, output)
        return
    from dataclasses import replace

    forced = confirm_force(force, book.name, confirm_forced)
    with holding_lease(cfg) as lease:
        result = execute(book, Estate(cfg), given, replace(options, lease=lease), journal, progress,
                         str(playbook.resolve()), context={"force_confirmation": forced} if forced else None)
    report_playbook(result, output)


def parse_params(items: list[str]) -> dict[str, str]:
    """``--param NAME=VALUE`` options as a mapping."""
    from drorch.errors import InvalidInput

    given = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise InvalidInput(f"--param {item!r}: write NAME=VALUE, e.g. --param to=tokyo")
        given[name] = value
    return given


def report_playbook(result: Any, output: Output) -> None:
    from dataclasses import asdict

    if output == Output.json:
        emit_json({**asdict(result), "steps": [asdict(s) for s in result.steps]})
    else:
        from drorch.engine.run import step_notes

        reason = f": {result.error}" if result.error else ""
        print(f"{result.playbook}: {result.status} (run {result.run_id}){reason}")
        for note in step_notes(result.steps):
            print(f"  note: {note}")
    if result.status != "succeeded":
        raise typer.Exit(result.exit_code or 1)


@handle_errors
def resume_command(
    run_id: str = typer.Argument(..., help="the unfinished run (see `drorch runs list`)"),
    yes: bool = typer.Option(False, "--yes", "-y", help="pre-approve every approval step"),
    config: Path | None = ConfigOption,
    output: Output = OutputOption,
) -> None:
    """Finish a playbook run that stopped (controller killed, step failed): completed steps are skipped."""
    from drorch.config import find_config_path, load_config
    from drorch.engine.executor import Options, resume_run
    from drorch.providers.estate import Estate
    from drorch.state.backends import holding_lease, open_journal

    cfg = load_config(find_config_path(config))
    with holding_lease(cfg) as lease:
        options = Options(approvals=frozenset({"*"}) if yes else frozenset(), interactive=sys.stdin.isatty(),
                          lease=lease)
        result = resume_run(open_journal(cfg), run_id, Estate(cfg), options, progress)
    report_playbook(result, output)
