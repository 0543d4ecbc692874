"""Could each standby take over right now? A verdict with the reasons when not."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from drorch.config.schema import Config
from drorch.probes.result import Snapshot
from drorch.providers.mysql.gtid import GtidPosition, errant


@dataclass(frozen=True)
class Readiness:
    site: str
    ready: bool
    reasons: tuple[str, ...]


def errant_in_round(replica: dict[str, Any], primary: dict[str, Any]) -> tuple[str | None, int]:
    """Errant transactions of a replica against the primary from one round's probe details: (GTIDs, count).

    With both per-origin histories (MariaDB binlog states, MySQL GTID sets) the comparison is exact per
    (domain, server) pair, leaving out the primary's own newest writes (the two were read a moment apart);
    otherwise positions are compared per domain.
    """
    mine, theirs = replica.get("gtid_history"), primary.get("gtid_history")
    if mine is None or theirs is None:
        text = _errant(str(replica.get("executed_gtid", "")), str(primary.get("executed_gtid", "")))
        return text, 0 if text is None else len(text.split(", "))
    found = errant(str(mine), str(theirs), ignore_origin=str(primary.get("origin", "")))
    return (str(found) or None), found.count


def _errant(replica_gtid: str, primary_gtid: str) -> str | None:
    """Transactions a replica has that its primary never had (MariaDB positions, per domain).

    The two positions are read a moment apart, so a busy primary's newest transaction may
    already be on the replica but not in the primary's older reading: a GTID ahead of the
    primary's that the primary's own server wrote is that race, not an errant transaction.
    """
    try:
        replica, primary = GtidPosition.parse(replica_gtid), GtidPosition.parse(primary_gtid)
    except ValueError:
        return None  # MySQL 8 GTID sets: checked by the replication tooling, not here
    writer = {d: s for d, s, _q in primary.domains}
    extra = [f"{d}-{s}-{q}" for d, s, q in replica.domains if q > primary.seq(d) and s != writer.get(d)]
    return ", ".join(extra) or None


def _database_reasons(config: Config, snapshot: Snapshot, site: str, primary: str) -> list[str]:
    database = snapshot.get(site, "database")
    if database is None or not database.ok:
        return [f"database unreachable ({database.error if database else 'not probed'})"]
    detail, reasons = database.detail, []
    if detail.get("writable"):
        reasons.append("database is writable: it is not a replica")
    if not (detail.get("io_running") and detail.get("sql_running")):
        reasons.append("replication is not running" + (f": {detail['last_error']}" if detail.get("last_error") else ""))
    endpoint = config.site(primary).mysql
    if detail.get("source") not in (None, f"{endpoint.host}:{endpoint.port}"):
        reasons.append(f"replicates from {detail['source']}, not from the primary {primary}")
    rpo = config.objectives.rpo_seconds
    if database.value is None:
        reasons.append("no heartbeat has reached it (is `drorch serve` running?)")
    elif database.value > rpo:
        reasons.append(f"replication lag {database.value:.2f} s exceeds the RPO objective {rpo:g} s")
    primary_result = snapshot.get(primary, "database")
    if primary_result is not None and primary_result.ok:
        found, count = errant_in_round(detail, primary_result.detail)
        if found:
            exact = "gtid_history" in detail  # per-pair histories: sure enough to name the fix
            fix = f" ({count} transaction(s)); fix: `drorch replication reprotect {site} --rebuild`" if exact else ""
            reasons.append(f"errant GTIDs not on the primary: {found}{fix}")
    return reasons


def assess(config: Config, snapshot: Snapshot, primary: str) -> dict[str, Readiness]:
    """Readiness of every site except the current primary."""
    verdicts = {}
    for site in config.sites:
        if site == primary:
            continue
        reasons = _database_reasons(config, snapshot, site, primary)
        for probe, problem in (("app", "application unhealthy"), ("compute", "no running compute capacity"),
                               ("vpn", "VPN tunnels down"), ("dynamodb", "DynamoDB tables not ACTIVE")):
            result = snapshot.get(site, probe)
            if result is not None and not result.ok:
                reasons.append(f"{problem} ({result.error})" if result.error else problem)
        record = config.dns.sites.get(site)
        if record is None:
            reasons.append("no DNS record for this site in dns.sites")
        elif record.health_check_id is None:
            reasons.append("its DNS record has no health check")
        verdicts[site] = Readiness(site, not reasons, tuple(reasons))
    return verdicts
