"""Reprotect: make a returning old primary a replica of the current one, never hiding what it lost.

After an unplanned failover the old primary may come back holding transactions the
new primary never received (written in its last moments, not yet acknowledged by a
replica). Rejoining it as a replica would leave them in its binlog as errant GTIDs:
a later switchover back would resurrect them, or replication would break on them.
So reprotect compares histories first and refuses, explaining how to rebuild, when
anything would be lost silently. Before rejoining it also reads the old primary's
last heartbeat: that turns the earlier failover's unknown RPO into a measured one.
"""

from __future__ import annotations

from dataclasses import dataclass

from drorch.engine.topology import observe
from drorch.errors import InvalidInput, RefusedForSafety
from drorch.measure.objectives import heartbeat_rpo
from drorch.providers.estate import Estate
from drorch.replication.roles import follow, semi_sync_partner, unreplicated, wait_applied

CATCH_UP_TIMEOUT = 60.0
UNFINISHED_MARKER = "drorch_rebuild_unfinished"
"""A table a rebuild creates (unlogged) before it loads data and drops when replication starts: while it
exists the server holds a partial copy, which must never be rejoined as if it were whole."""


class Diverged(RefusedForSafety):
    """The site holds transactions the primary never received (or a partial rebuild): only a rebuild fixes it."""

    def __init__(self, message: str, site: str, primary: str, lost: list[str]) -> None:
        super().__init__(message)
        self.site, self.primary, self.lost = site, primary, lost


@dataclass(frozen=True)
class Reprotected:
    site: str
    source: str
    already: bool  # it was already a running replica of the primary
    rpo_seconds: float | None  # heartbeat-measured loss of the failover that left it behind


@dataclass(frozen=True)
class Assessment:
    """What reprotecting ``site`` would do: rejoin ``primary``, or nothing when ``already`` a running replica."""

    site: str
    primary: str
    already: bool


def assess(estate: Estate, site: str) -> Assessment:
    """Every check reprotect makes before changing anything; raises when it must not go on."""
    estate.config.site(site)
    topology = observe(estate)
    topology.refuse_split_brain()
    primary = topology.primary
    if site == primary:
        raise InvalidInput(f"{site} is the primary: there is nothing to reprotect (see `drorch status`)")
    state = topology.states[site]
    if state is None:
        raise RefusedForSafety(f"{site}'s database does not answer: start it, then run again")
    if topology.states[primary] is None:
        raise RefusedForSafety(f"the primary {primary} does not answer: reprotecting {site} needs it")
    if unfinished_rebuild(estate, site):
        raise Diverged(f"a rebuild of {site} did not finish: it holds a partial copy of {primary}. Nothing was "
                       f"changed. Run `drorch replication reprotect {site} --rebuild` to finish it",
                       site, primary, ["(partial copy from an unfinished rebuild)"])
    lost = unreplicated(estate.mysql(site), estate.mysql(primary))
    if lost:
        raise Diverged(_rebuild_advice(site, primary, lost, heartbeat_rpo(estate, site, primary)), site, primary, lost)
    target = estate.config.site(primary).mysql
    replica = state.replica
    already = (replica is not None and (replica.source_host, replica.source_port) == (target.host, target.port)
               and replica.io_running and replica.sql_running)
    return Assessment(site, primary, already)


def unfinished_rebuild(estate: Estate, site: str) -> bool:
    """Whether the site carries the marker of a rebuild that stopped before replication started."""
    schema = estate.config.data.heartbeat.table.split(".")[0]
    rows = estate.mysql(site).query("SELECT COUNT(*) AS n FROM information_schema.TABLES "
                                    "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s", (schema, UNFINISHED_MARKER))
    return bool(rows and int(rows[0]["n"]))


def reprotect(estate: Estate, site: str, timeout: float = CATCH_UP_TIMEOUT) -> Reprotected:
    """Make ``site`` a caught-up replica of the current primary; refuse if it holds unreplicated transactions."""
    found = assess(estate, site)
    old, new = estate.mysql(site), estate.mysql(found.primary)
    if found.already:
        wait_applied(old, new.state().binlog_gtid, timeout)
        return Reprotected(site, found.primary, True, None)
    rpo = heartbeat_rpo(estate, site, found.primary)  # before rejoining: replication would overwrite the evidence
    target = estate.config.site(found.primary).mysql
    follow(old, target.host, target.port, estate.config.data.mysql.replication_user, estate.replication_password(),
           semi_sync_partner(estate, found.primary) == site)
    wait_applied(old, new.state().binlog_gtid, timeout)
    return Reprotected(site, found.primary, False, rpo)


def _rebuild_advice(site: str, primary: str, lost: list[str], rpo: float | None) -> str:
    span = f" (about {rpo} s of writes by heartbeats)" if rpo is not None else ""
    return (
        f"{site} holds transactions {primary} never received: {'; '.join(lost)}{span}. Written on {site} alone "
        f"(an old primary's last writes, or errant writes on a replica), they would stay behind as errant GTIDs. "
        f"Nothing was changed. To go on:\n"
        f"  1. keep them if they matter: mariadb-binlog on {site}'s last binlog shows them (or mysqlbinlog);\n"
        f"  2. rebuild {site} from {primary}: on {site} STOP SLAVE; RESET SLAVE ALL; RESET MASTER; then restore a "
        f"fresh copy of {primary} (mariadb-backup --backup on {primary}, --prepare, --copy-back on {site}, or "
        f"mariadb-dump --single-transaction --gtid --master-data=1 from {primary} loaded into {site});\n"
        f"  3. run `drorch failback` again: it rejoins {site} and checks again before switching back.\n"
        f"`drorch replication reprotect {site} --rebuild` (or `drorch failback --rebuild`) does steps 2 and 3 "
        f"for you after you confirm."
    )
