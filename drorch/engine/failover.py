"""``drorch failover --to SITE``: move the service to another site through its playbook, measured.

The playbook (``failover-to-SITE.yaml``, else ``failover.yaml``) decides the steps:
a switchover when the old primary answers (fence, catch up, promote: nothing lost),
an unplanned failover when it is dead and the replicas agree. This module adds what
every failover needs around it: the journal entry that automatic mode's
anti-flapping reads, and the RTO and RPO of the run. RPO is proven from GTIDs when
the old primary was fenced; otherwise it comes from heartbeats: at once when
``drorch serve`` knows the last acknowledged one, else when ``drorch failback``
reprotects the old primary.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drorch.drill.archive import write_reports
from drorch.engine.executor import Options, PlaybookResult, execute
from drorch.engine.playbook import library
from drorch.engine.playbook.loader import load_playbook
from drorch.engine.run import Progress, StepResult, step_notes
from drorch.measure.objectives import data_loss, heartbeat_rpo
from drorch.providers.estate import Estate
from drorch.state.journal import Journal

PREAPPROVED = Options(approvals=frozenset({"*"}))


@dataclass(frozen=True)
class FailoverResult:
    run_id: str
    status: str
    from_site: str
    to_site: str
    kind: str  # switchover | failover | already-primary
    rto_seconds: float | None
    rpo_seconds: float | None
    lost_transactions: int | None
    steps: list[StepResult]
    notes: list[str] = field(default_factory=list)
    playbook: str = ""
    error: str | None = None
    exit_code: int = 0  # 3 when a step refused for safety (nothing unsafe was done), 1 when a step failed

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "status": self.status, "from": self.from_site, "to": self.to_site,
            "kind": self.kind, "playbook": self.playbook, "rto_seconds": self.rto_seconds,
            "rpo_seconds": self.rpo_seconds, "lost_transactions": self.lost_transactions, "notes": self.notes,
            "error": self.error,
            "steps": [
                {"name": s.name, "status": s.status, "duration_seconds": round(s.duration_seconds, 3),
                 "detail": s.detail, "error": s.error}
                for s in self.steps
            ],
        }


def failover(estate: Estate, to: str, progress: Progress | None = None, journal: Journal | None = None,
             trigger: str = "manual", reason: str = "", last_heartbeat: float | None = None,
             playbook: Path | None = None, options: Options = PREAPPROVED,
             incident_at: float | None = None) -> FailoverResult:
    """Run the failover playbook to ``to``; raise before any change when it must not run.

    ``trigger`` (manual | automatic | failback) and ``reason`` are journaled: automatic runs are
    what the anti-flapping block period counts. ``last_heartbeat`` is when the last heartbeat was
    acknowledged on the current primary (``drorch serve`` knows it). ``incident_at`` is when the
    incident was detected: the RTO counts from there (from the run's start when not given).
    """
    estate.config.site(to)
    path = playbook or library.choose(estate.config, "failover", to)
    book = load_playbook(path)
    given = {"to": to} if "to" in book.parameters else {}

    def measure(result: PlaybookResult) -> dict[str, Any]:
        summary = _measure(estate, to, result, last_heartbeat)
        if incident_at is not None and summary["rto_seconds"] is not None:
            summary.update(rto_seconds=round(time.time() - incident_at, 3), incident_at=incident_at)
        return summary

    result = execute(book, estate, given, options, journal, progress, str(path.resolve()), operation="failover",
                     context={"trigger": trigger, "reason": reason}, measure=measure)
    if journal is not None and result.run_id is not None:
        write_reports(estate.config, journal, str(result.run_id))
    m = result.measured
    return FailoverResult(str(result.run_id), result.status, m["from"], to, m["kind"], m["rto_seconds"],
                          m["rpo_seconds"], m["lost_transactions"], result.steps, m["notes"], book.name,
                          result.error, result.exit_code)


def _measure(estate: Estate, to: str, result: PlaybookResult, last_heartbeat: float | None) -> dict[str, Any]:
    """RTO, RPO and the kind of move, for the journal (metrics and `runs show` read them there)."""
    old = str(result.variables.get("from", result.variables["primary"]))
    planned = bool(result.variables["primary_reachable"])
    kind = "already-primary" if old == to else "switchover" if planned else "failover"
    done = result.status == "succeeded"
    summary: dict[str, Any] = {"from": old, "to": to, "kind": kind, "notes": step_notes(result.steps),
                               "rto_seconds": result.elapsed_seconds if done else None,
                               "rpo_seconds": None, "lost_transactions": None}
    if not done or kind == "already-primary":
        summary.update(rpo_seconds=0.0 if done else None, lost_transactions=0 if done else None)
        return summary
    if planned:
        loss = data_loss(estate, to, result.steps)
        summary.update(rpo_seconds=loss.rpo_seconds, lost_transactions=loss.lost_transactions)
        if loss.lost_transactions:
            summary["notes"].append(f"{to} lacks {loss.lost_transactions} transaction(s) of {old}")
        return summary
    rpo = None if last_heartbeat is None else heartbeat_rpo(estate, old, to, last_heartbeat)
    summary["rpo_seconds"] = rpo
    summary["notes"].append(
        f"RPO {rpo} s by heartbeats (the last one acknowledged on {old} vs the newest {to} got)" if rpo is not None
        else f"RPO not known yet: {old} is unreachable; `drorch failback` measures it by heartbeats when it answers")
    return summary
