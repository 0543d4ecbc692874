"""``drorch iam-policy``: the least AWS IAM policy this estate needs."""

from __future__ import annotations

from pathlib import Path

import typer

from drorch.cli.output import ConfigOption, emit_json, handle_errors


@handle_errors
def iam_policy_command(
    playbook: list[Path] = typer.Option([], "--playbook", help="playbooks to cover (default: all in the playbook "
                                                               "directories failover, failback and plan use)"),
    account_id: str = typer.Option("*", "--account-id", help="the AWS account in resource ARNs"),
    config: Path | None = ConfigOption,
) -> None:
    """Print the least AWS IAM policy drorch needs for this estate: its probes plus the playbooks' actions."""
    from drorch.config import find_config_path, load_config
    from drorch.engine.iam import policy
    from drorch.engine.playbook import library
    from drorch.engine.playbook.loader import load_playbook
    from drorch.errors import InvalidInput

    if account_id != "*" and not (account_id.isdigit() and len(account_id) == 12):
        raise InvalidInput(f"--account-id {account_id}: an AWS account id is 12 digits")
    cfg = load_config(find_config_path(config))
    files = playbook or sorted({p for folder in library.directories(cfg) for p in folder.glob("*.yaml")},
                               key=lambda p: p.name)
    emit_json(policy(cfg, [load_playbook(path) for path in files], account_id))
