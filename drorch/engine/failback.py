"""``drorch failback``: return to the home primary (the config's ``role: primary`` site) safely.

The failback playbook (``failback-to-HOME.yaml``, else ``failback.yaml``) first
reprotects: the home site rejoins as a replica of the current primary, after a check
that it holds nothing the current primary lacks, and catches up. Only then a planned
switchover back, which fences, waits and promotes with zero data loss. The heartbeat
RPO read during reprotect is written into the failover run that left the home site
behind, so that run's record is complete.

With ``rebuild`` a home site holding transactions the current primary never received
is rebuilt from it first (the caller has had that confirmed): the playbook's reprotect
step then finds a caught-up replica.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from drorch.engine.executor import Options
from drorch.engine.failover import PREAPPROVED, FailoverResult, failover
from drorch.engine.playbook import library
from drorch.engine.run import Progress
from drorch.errors import DrorchError
from drorch.providers.estate import Estate
from drorch.replication.rebuild import CopyProgress, Rebuilt, rebuild
from drorch.replication.rejoin import Diverged, Reprotected, assess
from drorch.state.journal import Journal


@dataclass(frozen=True)
class FailbackResult:
    reprotected: Reprotected | None  # None when the run stopped before reprotecting
    switchover: FailoverResult
    completed_run: str | None  # the failover run whose RPO this failback measured
    rebuilt: Rebuilt | None = None  # the home site was rebuilt from the primary before the switchover


def failback(estate: Estate, progress: Progress | None = None, journal: Journal | None = None,
             home: str | None = None, playbook: Path | None = None, options: Options = PREAPPROVED,
             rebuild_diverged: bool = False, copy_progress: CopyProgress | None = None) -> FailbackResult:
    """Run the failback playbook to ``home`` (default: the configured primary site).

    ``rebuild_diverged``: rebuild the home site first when it holds transactions the primary never had.
    """
    site = home or estate.config.primary_site
    estate.config.site(site)
    path = playbook or library.choose(estate.config, "failback", site)
    rebuilt = _rebuild_if_diverged(estate, site, copy_progress) if rebuild_diverged else None
    result = failover(estate, site, progress, journal, trigger="failback", playbook=path, options=options)
    detail = next((s.detail for s in result.steps if s.status == "succeeded" and "reprotected" in s.detail), None)
    done = None if detail is None else Reprotected(site, str(detail["source"]), bool(detail["already"]),
                                                   detail["rpo_seconds"])
    if rebuilt is not None:  # the rebuild read the heartbeats before the data went
        done = Reprotected(site, rebuilt.source, False, rebuilt.rpo_seconds)
    completed = _complete_failover_record(journal, done) if journal is not None and done is not None else None
    return FailbackResult(done, result, completed, rebuilt)


def _rebuild_if_diverged(estate: Estate, site: str, copy_progress: CopyProgress | None) -> Rebuilt | None:
    try:
        assess(estate, site)
    except Diverged as exc:
        return rebuild(estate, site, exc.lost, copy_progress)
    except DrorchError:  # the playbook's guards and reprotect step say it, the way they always do
        return None
    return None


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
