"""``drorch failover --to SITE``: move the service to another site, safely and measured.

Switchover (the old primary answers): scale the target, fence the old primary,
wait until the target applied everything, promote, repoint the others, rejoin the
old primary as a replica, flip DNS, verify. Unplanned failover (the old primary
is dead): the same without fencing and rejoining, and only when the replicas
confirm they lost the primary too. Every action is idempotent, so running the
command again after a crash finishes the job.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from drorch.engine.actions import compute, dns, http
from drorch.engine.run import Progress, Run, StepResult
from drorch.engine.topology import observe
from drorch.errors import DrorchError, OperationFailed, RefusedForSafety
from drorch.measure.objectives import heartbeat_rpo
from drorch.providers.estate import Estate
from drorch.providers.mysql.client import MySQLClient, ServerState
from drorch.replication import roles as mysql
from drorch.state.journal import Journal

CATCH_UP_TIMEOUT = 30.0
VERIFY_TIMEOUT = 60.0


@dataclass(frozen=True)
class FailoverResult:
    run_id: str
    status: str
    from_site: str
    to_site: str
    kind: str
    rto_seconds: float | None
    rpo_seconds: float | None
    lost_transactions: int | None
    steps: list[StepResult]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "status": self.status, "from": self.from_site, "to": self.to_site,
            "kind": self.kind, "rto_seconds": self.rto_seconds, "rpo_seconds": self.rpo_seconds,
            "lost_transactions": self.lost_transactions, "notes": self.notes,
            "steps": [
                {"name": s.name, "status": s.status, "duration_seconds": round(s.duration_seconds, 3),
                 "detail": s.detail, "error": s.error}
                for s in self.steps
            ],
        }


def failover(estate: Estate, to: str, progress: Progress | None = None,
             journal: Journal | None = None, trigger: str = "manual", reason: str = "",
             last_heartbeat: float | None = None) -> FailoverResult:
    """Move the primary role and the service name to ``to``; journal every step when given a journal.

    ``trigger`` (manual | automatic) and ``reason`` are journaled: automatic runs are what
    the anti-flapping block period counts. ``last_heartbeat`` is when the last heartbeat was
    acknowledged on the current primary (``drorch serve`` knows): it gives an unplanned
    failover its RPO right away.
    """
    config = estate.config
    config.site(to)
    dbs = {site: estate.mysql(site) for site in config.sites}
    topology = observe(estate)
    topology.refuse_split_brain()
    topology.refuse_partition()
    states, old = topology.states, topology.primary
    if states[to] is None:
        raise RefusedForSafety(f"{to}'s database does not answer: it cannot become primary")
    context = {"from": old, "to": to, "trigger": trigger, "reason": reason}
    run = Run("failover", context, progress, journal)
    try:
        result = _execute(estate, run, dbs, states, old, to, last_heartbeat)
    except DrorchError as exc:
        run.finish("failed", {**context, "error": str(exc)})
        raise
    summary = {**result.to_json(), "trigger": trigger, "reason": reason}
    del summary["steps"]
    run.finish(result.status, summary)
    return result


def _execute(estate: Estate, run: Run, dbs: dict[str, MySQLClient], states: dict[str, ServerState | None],
             old: str, to: str, last_heartbeat: float | None) -> FailoverResult:
    config = estate.config
    if old == to:
        to_state = states[to]
        if to_state is not None and to_state.read_only:  # e.g. restarted after a crash: servers come back fenced
            partner = mysql.semi_sync_partner(estate, to)
            run.step(f"make {to} database writable again",
                     lambda: _promote(dbs[to], partner is not None and states.get(partner) is not None))
        return _finish(estate, run, old, to, "already-primary", lost=0, notes=[f"{to} was already primary"])
    planned = states[old] is not None
    replica_user = config.data.mysql.replication_user
    repl_password = estate.replication_password()
    target = config.site(to).mysql
    partner = mysql.semi_sync_partner(estate, to)
    run.step(f"scale {to} compute to active", lambda: compute.scale_to_active(estate, to))
    fenced_gtid = ""
    if planned:
        fenced_gtid = run.step(f"fence {old} database", lambda: _fence(dbs[old]))["binlog_gtid"]
    else:
        run.skip(f"fence {old} database", "unreachable (confirmed by the replicas)")
    try:
        catch_up_to = fenced_gtid or mysql.received_gtid(dbs[to])
        run.step(f"wait until {to} applied all it received",
                 lambda: _wait(dbs[to], catch_up_to))
        partner_alive = partner is not None and states.get(partner) is not None
        run.step(f"promote {to} database", lambda: _promote(dbs[to], partner_alive))
    except DrorchError:
        if planned:
            run.step(f"rollback: unfence {old} database", lambda: _unfence(dbs[old]))
            return _result(run, "rolled_back", old, to, "switchover", None, None, notes=["promotion did not happen"])
        raise
    for site, state in states.items():
        if site in (old, to):
            continue
        if state is None:
            run.skip(f"repoint {site} to {to}", "unreachable; repoint it when it is back")
            continue
        run.step(f"repoint {site} to {to}", functools.partial(
            _follow, dbs[site], target.host, target.port, replica_user, repl_password, site == partner))
    if planned:
        run.step(f"rejoin {old} as replica of {to}", lambda: _follow(
            dbs[old], target.host, target.port, replica_user, repl_password, old == partner))
    run.step(f"point DNS at {to}", lambda: {"changed": dns.point_to(estate, to, old)})
    if planned:
        return _finish(estate, run, old, to, "switchover", lost=mysql.missing_transactions(dbs[to], fenced_gtid))
    rpo = None if last_heartbeat is None else heartbeat_rpo(estate, old, to, last_heartbeat)
    return _finish(estate, run, old, to, "failover", lost=None, rpo=rpo)


def _finish(estate: Estate, run: Run, old: str, to: str, kind: str, lost: int | None,
            notes: list[str] | None = None, rpo: float | None = None) -> FailoverResult:
    if kind == "already-primary":
        run.step(f"point DNS at {to}", lambda: {"changed": dns.point_to(estate, to, None)})
    run.step(f"verify {to} serves through DNS",
             lambda: {"waited_seconds": http.wait_serving(estate, to, VERIFY_TIMEOUT)})
    rto = run.elapsed()
    rpo = 0.0 if lost == 0 else rpo
    all_notes = list(notes or [])
    if lost is None and rpo is None:
        all_notes.append("RPO not known yet: the old primary is unreachable; `drorch failback` measures it by "
                         "heartbeats when it answers again")
    elif lost is None:
        all_notes.append(f"RPO {rpo} s by heartbeats (the last one acknowledged on {old} vs the newest {to} got)")
    elif lost:
        raise OperationFailed(f"{to} lacks {lost} transaction(s) of {old} after the switchover")
    return _result(run, "succeeded", old, to, kind, rto, rpo, lost, all_notes)


def _result(run: Run, status: str, old: str, to: str, kind: str, rto: float | None, rpo: float | None,
            lost: int | None = None, notes: list[str] | None = None) -> FailoverResult:
    return FailoverResult(run.run_id, status, old, to, kind, None if rto is None else round(rto, 3), rpo, lost,
                          list(run.steps), notes or [])


def _fence(db: MySQLClient) -> dict[str, Any]:
    result = mysql.fence(db)
    return {"binlog_gtid": result.binlog_gtid, "killed_sessions": result.killed_sessions}


def _unfence(db: MySQLClient) -> dict[str, Any]:
    db.execute(*db.flavor.unfence_sql())
    return {}


def _wait(db: MySQLClient, gtid: str) -> dict[str, Any]:
    mysql.wait_applied(db, gtid, CATCH_UP_TIMEOUT)
    return {"gtid": gtid}


def _promote(db: MySQLClient, semi_sync_source: bool) -> dict[str, Any]:
    mysql.promote(db, semi_sync_source)
    return {"semi_sync_source": semi_sync_source}


def _follow(db: MySQLClient, host: str, port: int, user: str, password: str, semi_sync: bool) -> dict[str, Any]:
    mysql.follow(db, host, port, user, password, semi_sync)
    return {"source": f"{host}:{port}", "semi_sync": semi_sync}
