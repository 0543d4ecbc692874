"""Output conventions shared by every command.

``--output json`` prints exactly one JSON document on stdout; human text and logs
go to stderr or stdout as tables. Errors map to the documented exit codes.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from enum import StrEnum
from typing import Any, ParamSpec, TypeVar

import typer

from drorch.errors import DrorchError

P = ParamSpec("P")
R = TypeVar("R")


class Output(StrEnum):
    text = "text"
    json = "json"


OutputOption = typer.Option(Output.text, "--output", "-o", help="text for people, json for scripts")
ConfigOption = typer.Option(None, "--config", "-c", help="drorch.yaml (default: $DRORCH_CONFIG, then ./drorch.yaml)")


def emit_json(document: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")


def info(message: str) -> None:
    """Progress and logs go to stderr, keeping stdout clean for --output json."""
    print(message, file=sys.stderr, flush=True)


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Report DrorchError as a clear message with its exit code (JSON too when asked)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except DrorchError as exc:
            if kwargs.get("output") == Output.json:
                emit_json({"error": str(exc), "exit_code": exc.exit_code})
            info(f"error: {exc}")
            raise typer.Exit(exc.exit_code) from None

    return wrapper


def progress(name: str, status: str, seconds: float) -> None:
    """Live step progress on stderr, shared by every command that runs steps."""
    info(f"  ... {name}" if status == "running" else f"  {status:9} {name} ({seconds:.2f} s)")


ConfirmForceOption = typer.Option(None, "--confirm-force", metavar="NAME", help=(
    "with --force and no terminal: type the target's name here to confirm overriding safety guards"))


def confirm_force(force: bool, target: str, typed: str | None) -> str | None:
    """A typed confirmation before safety guards may be overridden; the journal note, or None without --force.

    ``--yes`` is not enough: overriding a guard can lose data or risk two primaries, so the person
    must type the target's name (at the prompt, or as ``--confirm-force NAME`` in a script).
    """
    from drorch.errors import InvalidInput

    if not force:
        if typed is not None:
            raise InvalidInput("--confirm-force is only used with --force; drop it, or add --force")
        return None
    if typed is None:
        if not typer.get_text_stream("stdin").isatty():
            raise InvalidInput(f"--force overrides safety guards: confirm by adding --confirm-force {target} "
                               "(no terminal to type it at); nothing was changed")
        typed = typer.prompt(f"--force overrides safety guards (data may be lost). Type {target} to confirm")
        how = "typed at the prompt"
    else:
        how = "given as --confirm-force"
    if typed.strip() != target:
        raise InvalidInput(f"--force was not confirmed: '{typed.strip()}' is not '{target}'; nothing was changed")
    return f"--force confirmed: {target} {how}"


def confirm(yes: bool, question: str) -> None:
    """Ask before a change; without a terminal, ``--yes`` is required (nobody could answer)."""
    from drorch.errors import InvalidInput

    if yes:
        return
    if not typer.get_text_stream("stdin").isatty():
        raise InvalidInput("--yes is required when not running on a terminal (no one can confirm)")
    typer.confirm(question, abort=True)
