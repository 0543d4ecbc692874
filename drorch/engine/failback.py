"""``drorch failback``: return to the home primary (the config's ``role: primary`` site) safely.

First reprotect: the home site rejoins as a replica of the current primary, after
a check that it holds nothing the current primary lacks, and catches up. Only then
a planned switchover back, which fences, waits and promotes with zero data loss.
The heartbeat RPO read during reprotect is written into the failover run that left
the home site behind, so that run's record is complete.
"""

from __future__ import annotations

from dataclasses import dataclass

from drorch.engine.failover import FailoverResult, failover
from drorch.engine.run import Progress, Run
from drorch.errors import DrorchError
from drorch.providers.estate import Estate
from drorch.replication.rejoin import Reprotected, reprotect
from drorch.state.journal import Journal


@dataclass(frozen=True)
class FailbackResult:
    reprotected: Reprotected
    switchover: FailoverResult
    completed_run: str | None  # the failover run whose RPO this failback measured


def failback(estate: Estate, progress: Progress | None = None, journal: Journal | None = None,
             home: str | None = None) -> FailbackResult:
    """Reprotect ``home`` (default: the configured primary site), then switch over to it."""
    site = home or estate.config.primary_site
    run = Run("reprotect", {"site": site}, progress, journal)
    try:
        detail = run.step(f"reprotect {site} (rejoin as replica, caught up)", lambda: _reprotect(estate, site))
    except DrorchError as exc:
        run.finish("failed", {"site": site, "error": str(exc)})
        raise
    done = Reprotected(site, detail["source"], detail["already"], detail["rpo_seconds"])
    run.finish("succeeded", {"site": site, **detail})
    completed = _complete_failover_record(journal, done) if journal is not None else None
    return FailbackResult(done, failover(estate, site, progress, journal, trigger="failback"), completed)


def _reprotect(estate: Estate, site: str) -> dict[str, object]:
    result = reprotect(estate, site)
    return {"source": result.source, "already": result.already, "rpo_seconds": result.rpo_seconds}


def _complete_failover_record(journal: Journal, done: Reprotected) -> str | None:
    """Give the newest failover from ``done.site`` to ``done.source`` its heartbeat RPO when it had none."""
    if done.rpo_seconds is None:
        return None
    for record in journal.runs(100):
        summary = record.summary
        if record.operation != "failover" or (summary.get("from"), summary.get("to")) != (done.site, done.source):
            continue
        if record.status != "succeeded" or summary.get("rpo_seconds") is not None:
            return None
        journal.finish_run(record.run_id, record.status, record.finished_at or record.started_at,
                           {**summary, "rpo_seconds": done.rpo_seconds,
                            "rpo_measured": f"by heartbeats when {done.site} was reprotected"})
        return record.run_id
    return None
