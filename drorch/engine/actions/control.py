"""Control actions: pause, ask a human, or let a user's hook veto the run."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

from pydantic import Field

from drorch.engine.catalogue import ActionContext, Params, action
from drorch.errors import OperationFailed, RefusedForSafety


class SleepParams(Params):
    seconds: float = Field(ge=0, le=3600)


class ApprovalParams(Params):
    message: str


class HookParams(Params):
    command: list[str] = Field(min_length=1)
    timeout: float = Field(default=60.0, gt=0, le=3600)


@action("control.sleep", SleepParams, mutating=False)
def sleep_action(ctx: ActionContext, p: SleepParams) -> dict[str, Any]:
    """Wait a fixed time (e.g. for a DNS TTL to pass)."""
    time.sleep(p.seconds)
    return {"slept_seconds": p.seconds}


@action("control.approval", ApprovalParams, mutating=False)
def approval_action(ctx: ActionContext, p: ApprovalParams) -> dict[str, Any]:
    """Ask a human to approve before going on: a prompt on a terminal, or pre-approval with --yes.

    Without a terminal and without pre-approval the run is refused, never silently approved.
    """
    if "*" in ctx.approvals or p.message in ctx.approvals:
        return {"approved_by": "pre-approval"}
    if not (ctx.interactive and sys.stdin.isatty()):
        raise RefusedForSafety(f"approval needed ({p.message}) but no terminal to ask on: pass --yes to pre-approve")
    answer = input(f"{p.message} [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise RefusedForSafety(f"not approved: {p.message}")
    return {"approved_by": "terminal"}


@action("control.hook", HookParams, mutating=False)
def hook_action(ctx: ActionContext, p: HookParams) -> dict[str, Any]:
    """Run a user command with the run's variables in its environment; a non-zero exit vetoes the run."""
    env = {f"DRORCH_{k.upper()}": str(v) for k, v in ctx.variables.items() if isinstance(v, str | int | float | bool)}
    try:
        result = subprocess.run(p.command, capture_output=True, text=True, timeout=p.timeout, check=False,
                                env={**_base_env(), **env})
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise OperationFailed(f"hook {p.command[0]} could not run: {exc}") from None
    if result.returncode != 0:
        raise RefusedForSafety(f"hook {' '.join(p.command)} vetoed the run (exit {result.returncode}): "
                               f"{result.stderr.strip()[-300:]}")
    return {"exit_code": 0, "stdout": result.stdout.strip()[-300:]}


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TZ")}
