"""``drorch runbook render``: runbooks generated from playbooks."""

from __future__ import annotations

from pathlib import Path

import typer

from drorch.cli.output import handle_errors, info

app = typer.Typer(help="Runbooks for humans, generated from playbooks.", no_args_is_help=True)


@app.command("render")
@handle_errors
def render(
    playbooks: list[Path] = typer.Argument(..., help="playbook files"),
    out_dir: Path | None = typer.Option(None, "--out-dir", help="write runbooks/playbook-NAME.md here"),
) -> None:
    """Print (or write) the runbook of each playbook."""
    from drorch.engine.playbook.loader import load_playbook
    from drorch.engine.playbook.runbook import render as render_runbook

    for path in playbooks:
        text = render_runbook(load_playbook(path), str(path))
        if out_dir is None:
            print(text)
            continue
        target = out_dir / f"playbook-{path.stem}.md"
        target.write_text(text)
        info(f"wrote {target}")
