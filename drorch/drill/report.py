"""Reports of drills and failovers, from the journal alone: what was promised, what was measured, each step."""

from __future__ import annotations

import time
from typing import Any

from drorch.state.journal import RunRecord


def document(record: RunRecord) -> dict[str, Any]:
    """The run as one JSON document (for auditors' tools)."""
    return {"run_id": record.run_id, "operation": record.operation, "status": record.status,
            "started_at": record.started_at, "finished_at": record.finished_at, "summary": record.summary,
            "steps": [{"name": s.name, "status": s.status, "duration_seconds": s.duration_seconds,
                       "error": s.error} for s in record.steps]}


def markdown(record: RunRecord) -> str:
    """A report a tired human and an auditor can both read: verdict first, then figures, then steps."""
    summary = record.summary
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.started_at))
    route = route_of(summary, "->")
    lines = [f"# {record.operation} {record.run_id}: {record.status}", "", f"Started {when}; {route}.", ""]
    objectives: dict[str, dict[str, Any]] = summary.get("objectives", {})
    if objectives:
        lines += ["| objective | target | measured | met |", "|---|---|---|---|"]
        lines += [f"| {name.upper()} | {v['objective_seconds']} s | {v['measured_seconds']} s | "
                  f"{'yes' if v['met'] else '**NO**'} |" for name, v in objectives.items()]
        lines.append("")
    measured: dict[str, Any] = summary.get("measured", {})
    if measured:
        lines += ["| measured | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in measured.items()] + [""]
    elif "rto_seconds" in summary:
        lines += [f"RTO {summary.get('rto_seconds')} s, RPO {summary.get('rpo_seconds')} s, "
                  f"lost transactions {summary.get('lost_transactions')}.", ""]
    lines += ["| step | status | seconds |", "|---|---|---|"]
    lines += [f"| {s.name} | {s.status} | {'' if s.duration_seconds is None else round(s.duration_seconds, 3)} |"
              for s in record.steps]
    if summary.get("error"):
        lines += ["", f"Error: {summary['error']}"]
    return "\n".join(lines) + "\n"


def route_of(summary: dict[str, Any], arrow: str) -> str:
    """Where a run went: there and back for the drills that move the service, the one site for those that do not."""
    mode, to, home = summary.get("mode"), summary.get("to", "?"), summary.get("home")
    if mode is None:
        return f"{summary.get('from', '?')} {arrow} {to}"
    if mode in ("isolated", "restore"):
        return f"{mode} drill at {to} (nothing moved)"
    return f"{mode} drill {home} {arrow} {to} {arrow} {home}"
