"""The ``drorch`` command: a thin layer over library calls."""

from __future__ import annotations

import typer

from drorch.cli import backup, drill, failover, iam, lab, plan, playbook, replicate, replication, runbook, runs, status

app = typer.Typer(
    help="drorch: multi-cloud disaster-recovery orchestrator (probe, replicate, fail over, measure).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(lab.app, name="lab")
app.add_typer(runs.app, name="runs")
app.add_typer(playbook.app, name="playbook")
app.add_typer(runbook.app, name="runbook")
app.add_typer(replication.app, name="replication")
app.add_typer(replicate.app, name="replicate")
app.add_typer(backup.app, name="backup")
app.add_typer(backup.restore_app, name="restore")
app.command(name="failover")(failover.failover_command)
app.command(name="failback")(failover.failback_command)
app.command(name="plan")(plan.plan_command)
app.command(name="iam-policy")(iam.iam_policy_command)
app.command(name="drill")(drill.drill_command)
app.command(name="report")(drill.report_command)
app.command(name="drills")(drill.drills_command)
app.command(name="status")(status.status_command)
app.command(name="serve")(status.serve_command)
app.command(name="resume")(playbook.resume_command)


def main() -> None:
    app()
