"""The isolated drill: prove the standby could take over, without moving anything (SRM's test recovery).

The standby's compute is scaled to its active size, its replica is checked to be
promotable (the same readiness the failover guard uses: replicating from the
primary, no errant GTIDs, lag within the objective), and then a *copy* of it is
promoted: a scratch MariaDB at the standby's address receives a consistent copy
of the replica and becomes writable, and the app's smoke checks (health, a write,
the write read back) run against an app instance on that copy. Everything is
then removed and the compute returns to its warm size.

DNS, the primary and the real replica's role are never touched: the estate's
fingerprint (DNS pair, every database's role and source, threads running) is
taken before and after, and the drill fails loudly if they differ. Measured: the
time from the start until the copy served a write (the recovery time this path
would need), and the copy's data age by heartbeat (the RPO it would have had).
"""

from __future__ import annotations

import time
from typing import Any

import requests

from drorch.data import heartbeat
from drorch.drill.archive import write_reports
from drorch.drill.harness import DrillResult, lab_of
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


def isolated_drill(estate: Estate, to: str, journal: Journal, progress: Progress | None = None) -> DrillResult:
    """Scale ``to`` up, promote a scratch copy of its replica, smoke-test it, clean up; judge and report."""
    from drorch.lab import scratch

    config = estate.config
    home = away_from_home(estate, to)
    lab = lab_of(estate)
    run = Run("drill", {"mode": "isolated", "to": to, "home": home}, progress, journal)
    ctx = ActionContext(estate, {})
    started = time.time()
    figures: dict[str, Any] = {}
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
            bubble = run.step(f"start a scratch database and app at {to}", lambda: _bubble(scratch.start(lab, to)))
            figures.update(run.step(f"copy {to}'s replica into the scratch database",
                                    lambda: _copy(estate, to, bubble["scratch"])))
            run.step("promote the scratch copy", lambda: _promote(bubble["scratch"]))
            run.step("smoke checks against the scratch copy", lambda: _smoke(bubble["scratch"]))
            figures["recovery_seconds"] = round(time.time() - started, 3)
        finally:
            run.step("remove the scratch database and app", lambda: {"stopped": scratch.stop(lab, to)})
            run.step(f"return {to}'s compute to warm", lambda: compute.scale_action(
                ctx, compute.ComputeParams(site=to, size="warm")))
        run.step("check nothing else changed", lambda: _unchanged(before, fingerprint(estate)))
    except DrorchError as exc:
        beats.stop()
        run.finish("failed", {"mode": "isolated", "to": to, "home": home, "error": str(exc), "measured": figures})
        write_reports(config, journal, run.run_id)
        raise
    beats.stop()
    objectives = {
        "rto": {"objective_seconds": config.objectives.rto_seconds, "measured_seconds": figures["recovery_seconds"],
                "met": figures["recovery_seconds"] <= config.objectives.rto_seconds},
        "rpo": {"objective_seconds": config.objectives.rpo_seconds, "measured_seconds": figures["data_age_seconds"],
                "met": figures["data_age_seconds"] <= config.objectives.rpo_seconds}}
    status = "succeeded" if all(v["met"] for v in objectives.values()) else "missed"
    run.finish(status, {"mode": "isolated", "to": to, "home": home, "measured": figures, "objectives": objectives})
    write_reports(config, journal, run.run_id)
    return DrillResult(run.run_id, "isolated", to, home, status, figures, objectives, None, None)


def _bubble(found: Any) -> dict[str, Any]:
    return {"scratch": found, "app_url": found.app_url, "database": f"{found.db.address.host}:{found.db.address.port}"}


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


def _copy(estate: Estate, to: str, scratch: Any) -> dict[str, Any]:
    """A consistent copy of the replica (one snapshot), and how old its newest heartbeat was at that moment."""
    source = admin_client(estate, to)
    copy_started = time.time()
    copied, seconds = copy_schemas(source, scratch.db, user_schemas(source), client_programs(source.flavor), None)
    beat = heartbeat.newest(scratch.db, estate.config.data.heartbeat.table)
    if beat is None:
        raise OperationFailed(f"the copy of {to} holds no heartbeat: is `drorch serve` writing them on the primary?")
    return {"copied_bytes": copied, "copy_seconds": round(seconds, 3),
            "data_age_seconds": round(max(0.0, copy_started - beat.written_at), 3)}


def _promote(scratch: Any) -> dict[str, Any]:
    scratch.db.execute(*scratch.db.flavor.unfence_sql())
    return {"writable": not scratch.db.state().read_only}


def _smoke(scratch: Any) -> dict[str, Any]:
    """Health, one write, and the write read back from the copy."""
    health = requests.get(f"{scratch.app_url}/healthz", timeout=5)
    if health.status_code != 200 or not health.json().get("writable"):
        raise OperationFailed(f"smoke check: {scratch.app_url}/healthz answered {health.status_code} {health.text}")
    ref = f"isolated-drill-{int(time.time() * 1000)}"
    written = requests.post(f"{scratch.app_url}/orders", json={"client_ref": ref}, timeout=5)
    if written.status_code != 201:
        raise OperationFailed(f"smoke check: a write answered {written.status_code} {written.text}")
    rows = scratch.db.query("SELECT COUNT(*) AS n FROM shop.orders WHERE client_ref = %s", (ref,))
    if int(rows[0]["n"]) != 1:
        raise OperationFailed("smoke check: the acknowledged write is not in the copy")
    return {"health": health.json(), "write": written.json()}


def _unchanged(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    if before != after:
        raise OperationFailed(f"the isolated drill changed the estate: before {before}, after {after}; "
                              "check `drorch status` and put it back by hand")
    return {"unchanged": True}
