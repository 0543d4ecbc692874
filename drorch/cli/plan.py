"""``drorch plan``: what a failover (or any playbook) would change now, and the guards' verdicts."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from drorch.cli.output import ConfigOption, Output, OutputOption, emit_json, handle_errors

if TYPE_CHECKING:
    from drorch.engine.playbook.model import Playbook
    from drorch.providers.estate import Estate


@handle_errors
def plan_command(
    playbook: Path | None = typer.Argument(None, help="playbook file (default: the failover playbook for --to)"),
    to: str | None = typer.Option(None, "--to", help="target site (the `to` parameter)"),
    param: list[str] = typer.Option([], "--param", "-p", help="NAME=VALUE (repeatable)"),
    force: bool = typer.Option(False, "--force", help="plan as if overridable guards were overridden"),
    config: Path | None = ConfigOption,
    output: Output = OutputOption,
) -> None:
    """Show every change a failover (or PLAYBOOK) would make now and every guard's verdict; change nothing.

    Exits 3 when a guard would refuse the run, so `drorch plan --to X && drorch failover --to X` is safe.
    """
    from drorch.cli.playbook import parse_params
    from drorch.config import find_config_path, load_config
    from drorch.engine.playbook import library
    from drorch.engine.playbook.loader import load_playbook
    from drorch.errors import InvalidInput
    from drorch.providers.estate import Estate

    cfg = load_config(find_config_path(config))
    given = parse_params(param)
    if to is not None:
        cfg.site(to)
        given["to"] = to
    if playbook is None:
        if to is None:
            raise InvalidInput("plan needs --to SITE (the failover playbook for it) or a PLAYBOOK file")
        playbook = library.choose(cfg, "failover", to)
    show_plan(load_playbook(playbook), playbook, Estate(cfg), given, force, output)


def show_plan(book: Playbook, path: Path, estate: Estate, given: dict[str, str], force: bool,
              output: Output) -> None:
    """Print the plan; exit 3 when a guard would refuse."""
    from drorch.engine.plan import plan

    found = plan(book, estate, given, force)
    document = {**found.to_json(), "source": str(path)}
    if output == Output.json:
        emit_json(document)
    else:
        print(f"plan of {book.name} ({path}) with " +
              ", ".join(f"{k}={v}" for k, v in found.parameters.items()) + "; nothing was changed")
        for guard in found.guards:
            mark = "ok  " if guard.passed else ("FORCED" if force and guard.overridable else "FAIL")
            print(f"  guard {mark} {guard.name}" + ("" if guard.passed else f": {guard.message}"))
        for title, steps in (("steps", found.steps), ("rollback (only if a step fails)", found.rollback)):
            print(f"  {title}:")
            for step in steps:
                changes = "; ".join(step.changes) or ("no change" if step.runs and not step.note else "")
                print(f"    {'-' if step.runs else 'x'} {step.name} [{step.action}] {changes} "
                      f"{'(' + step.note + ')' if step.note else ''}".rstrip())
        print("would run" if not found.refused_by else f"would be REFUSED by: {', '.join(found.refused_by)}")
    if found.refused_by:
        raise typer.Exit(3)
