"""The isolated drill: prove the standby could take over, without moving anything (SRM's test recovery).

The standby's compute is scaled to its active size, its replica is checked to be
promotable (the same readiness the failover guard uses: replicating from the
primary, no errant GTIDs, lag within the objective), and then a *copy* of it is
promoted: a scratch server (see ``bubble``: the lab's own, or the one the config
names) receives a consistent copy of the replica and becomes writable, and the
app's smoke checks run against an app instance on that copy. Everything is then
removed and the compute returns to its warm size.

DNS, the primary and the real replica's role are never touched: the estate's
fingerprint (DNS pair, every database's role and source, threads running) is
taken before and after, and the drill fails loudly if they differ. Measured: the
time from the start until the copy served a write (the recovery time this path
would need), and the copy's data age by heartbeat (the RPO it would have had).
"""

from __future__ import annotations

import time
from typing import Any

from drorch.data import heartbeat
from drorch.drill.archive import write_reports
from drorch.drill.bubble import Bubble, Scratch, bubble_for
from drorch.drill.harness import DrillResult, load_log
from drorch.drill.switchover import away_from_home
from drorch.engine.actions import compute, dns
from drorch.engine.catalogue import ActionContext
from drorch.engine.run import Progress, Run
from drorch.engine.topology import observe
from drorch.errors import DrorchError, OperationFailed, RefusedForSafety
from drorch.probes import readiness
from drorch.probes.collect import Collector
from drorch.providers.estate import Estate
from drorch.providers.mysql.admin import admin_client
from drorch.replication.rebuild import client_programs, copy_schemas, user_schemas
from drorch.state.journal import Journal


def fingerprint(estate: Estate) -> dict[str, Any]:
    """What an isolated drill must leave exactly as it found it."""
    roles: dict[str, Any] = {}
    for site, state in observe(estate).states.items():
        replica = state.replica if state is not None else None
        roles[site] = None if state is None else {
            "read_only": state.read_only,
            "source": None if replica is None else f"{replica.source_host}:{replica.source_port}",
            "replicating": None if replica is None else replica.io_running and replica.sql_running}
    return {"dns": dns.active_sites(estate), "databases": roles}


def isolated_drill(estate: Estate, to: str, journal: Journal, progress: Progress | None = None,
                   schedule: str | None = None) -> DrillResult:
    """Scale ``to`` up, promote a scratch copy of its replica, smoke-test it, clean up; judge and report."""
    config = estate.config
    home = away_from_home(estate, to)
    bubble = bubble_for(estate, to, load_log(estate).parent)
    run = Run("drill", {"mode": "isolated", "to": to, "home": home, "schedule": schedule}, progress, journal)
    ctx = ActionContext(estate, {})
    started = time.time()
    figures: dict[str, Any] = {}
    place: dict[str, Scratch] = {}
    copied: list[str] = []  # the schemas copied into the scratch server, dropped afterwards
    primary = observe(estate).primary
    beats = heartbeat.Writer(estate.mysql, lambda: primary, config.data.heartbeat.table,
                             config.data.heartbeat.interval_seconds)  # what the copy's data age is read from
    beats.start()
    try:
        before = run.step("record the estate's roles, sources and DNS", lambda: fingerprint(estate))
        run.step(f"check {to}'s replica is promotable", lambda: _promotable(estate, to))
        try:
            run.step(f"scale {to}'s compute to active", lambda: compute.scale_action(
                ctx, compute.ComputeParams(site=to, size="active")))
            run.step(f"start a scratch database and app for {to}", lambda: _started(bubble, to, place))
            figures.update(run.step(f"copy {to}'s replica into the scratch database",
                                    lambda: _copy(estate, to, place["scratch"], copied)))
            run.step("promote the scratch copy", lambda: _promote(place["scratch"]))
            run.step("smoke checks against the scratch copy", lambda: bubble.smoke(place["scratch"]))
            figures["recovery_seconds"] = round(time.time() - started, 3)
        finally:
            run.step("remove the scratch database and app", lambda: bubble.stop(to, place.get("scratch"), copied))
            run.step(f"return {to}'s compute to warm", lambda: compute.scale_action(
                ctx, compute.ComputeParams(site=to, size="warm")))
        run.step("check nothing else changed", lambda: _unchanged(before, fingerprint(estate)))
    except DrorchError as exc:
        beats.stop()
        run.finish("failed", {"mode": "isolated", "to": to, "home": home, "schedule": schedule, "error": str(exc),
                              "measured": figures})
        write_reports(config, journal, run.run_id)
        raise
    beats.stop()
    objectives = {
        "rto": {"objective_seconds": config.objectives.rto_seconds, "measured_seconds": figures["recovery_seconds"],
                "met": figures["recovery_seconds"] <= config.objectives.rto_seconds},
        "rpo": {"objective_seconds": config.objectives.rpo_seconds, "measured_seconds": figures["data_age_seconds"],
                "met": figures["data_age_seconds"] <= config.objectives.rpo_seconds}}
    status = "succeeded" if all(v["met"] for v in objectives.values()) else "missed"
    run.finish(status, {"mode": "isolated", "to": to, "home": home, "schedule": schedule, "measured": figures,
                        "objectives": objectives})
    write_reports(config, journal, run.run_id)
    return DrillResult(run.run_id, "isolated", to, home, status, figures, objectives, None, None)


def _started(bubble: Bubble, site: str, place: dict[str, Scratch]) -> dict[str, Any]:
    scratch = place["scratch"] = bubble.start(site)
    return {"app_url": scratch.app_url, "database": f"{scratch.db.address.host}:{scratch.db.address.port}"}


def _promotable(estate: Estate, to: str) -> dict[str, Any]:
    collector = Collector(estate)
    try:
        snapshot = collector.round()
    finally:
        collector.close()
    primary = observe(estate).primary
    if to == primary:
        raise RefusedForSafety(f"{to} is the primary now: an isolated drill rehearses a standby (fail back first, "
                               "or name another site); nothing was changed")
    verdict = readiness.assess(estate.config, snapshot, primary)[to]
    if not verdict.ready:
        raise RefusedForSafety(f"{to} is not promotable: {'; '.join(verdict.reasons)}; nothing was changed")
    return {"ready": True, "primary": primary}


def _copy(estate: Estate, to: str, scratch: Scratch, copied: list[str]) -> dict[str, Any]:
    """A consistent copy of the replica (one snapshot), and how old its newest heartbeat was at that moment."""
    source = admin_client(estate, to)
    copy_started = time.time()
    schemas = user_schemas(source)
    copied.extend(schemas)
    size, seconds = copy_schemas(source, scratch.db, schemas, client_programs(source.flavor), None)
    beat = heartbeat.newest(scratch.db, estate.config.data.heartbeat.table)
    if beat is None:
        raise OperationFailed(f"the copy of {to} holds no heartbeat: is `drorch serve` writing them on the primary?")
    return {"copied_bytes": size, "copy_seconds": round(seconds, 3),
            "data_age_seconds": round(max(0.0, copy_started - beat.written_at), 3)}


def _promote(scratch: Scratch) -> dict[str, Any]:
    scratch.db.execute(*scratch.db.flavor.unfence_sql())
    return {"writable": not scratch.db.state().read_only}


def _unchanged(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    if before != after:
        raise OperationFailed(f"the isolated drill changed the estate: before {before}, after {after}; "
                              "check `drorch status` and put it back by hand")
    return {"unchanged": True}
