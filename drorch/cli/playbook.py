"""``drorch playbook validate|actions|run|schema``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from drorch.cli.output import Output, OutputOption, emit_json, handle_errors, info

app = typer.Typer(help="Declarative playbooks: validate them, list the actions, run one.", no_args_is_help=True)
ConfigOption = typer.Option(None, "--config", "-c", help="drorch.yaml (default: $DRORCH_CONFIG, then ./drorch.yaml)")


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
    force: bool = typer.Option(False, "--force", help="override guards marked overridable (journaled)"),
    config: Path | None = ConfigOption,
    output: Output = OutputOption,
) -> None:
    """Run a playbook against the configured estate."""
    from dataclasses import asdict

    from drorch.config import find_config_path, load_config
    from drorch.engine.executor import Options, execute
    from drorch.engine.playbook.loader import load_playbook
    from drorch.errors import InvalidInput
    from drorch.providers.estate import Estate
    from drorch.state.backends import open_journal

    given = {}
    for item in param:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise InvalidInput(f"--param {item!r}: write NAME=VALUE, e.g. --param to=tokyo")
        given[name] = value
    book = load_playbook(playbook)
    cfg = load_config(find_config_path(config))
    options = Options(dry_run=dry_run, force=force, approvals=frozenset({"*"}) if yes else frozenset(),
                      interactive=sys.stdin.isatty())

    def progress(name: str, status: str, seconds: float) -> None:
        info(f"  ... {name}" if status == "running" else f"  {status:9} {name} ({seconds:.2f} s)")

    result = execute(book, Estate(cfg), given, options, None if dry_run else open_journal(cfg), progress)
    if output == Output.json:
        emit_json({**asdict(result), "steps": [asdict(s) for s in result.steps]})
    elif dry_run:
        print(f"dry run of {result.playbook}: nothing changed; it would run:")
        for planned in result.planned:
            print(f"  {planned['step']}: {planned['action']} {planned['with']}")
    else:
        reason = f": {result.error}" if result.error else ""
        print(f"{result.playbook}: {result.status} (run {result.run_id}){reason}")
    if result.status not in ("succeeded", "dry-run"):
        raise typer.Exit(1)
