"""``drorch replication setup``: make the servers match ``data.mysql``, changing only what differs.

The plan is computed from what the servers say now, so a second run finds nothing to
do. Everything that could stop a run is checked before its first statement: every
server answers, the configured primary is the writable one, a replica is re-pointed
only when it holds nothing its new source lacks, and the executing account holds every
privilege the plan needs (else the exact GRANT to run is named). Per-server changes
(accounts, semi-sync, read_only) are not binlogged: logged, each would become an
errant transaction on the other servers. Only the heartbeat table is created on the
primary with logging on, so that it replicates.

After a failover (another site is the one writable database, the configured primary is
read-only or gone) setup finishes what the failover left undone instead of undoing it: a
standby that still replicates from elsewhere (it did not answer when the failover repointed
the others) is pointed at the current primary, as the failover would have done, after the
same errant check; sites that do not answer are left for a later run, and the old primary
for ``drorch failback`` (which reprotects it and measures what the failover lost).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pymysql
import pymysql.converters

from drorch.data.heartbeat import create_table_sql
from drorch.engine.topology import site_at
from drorch.errors import OperationFailed, RefusedForSafety
from drorch.providers.estate import Estate
from drorch.providers.mysql.admin import Observed, admin_client, grant_statements, observe
from drorch.providers.mysql.client import MySQLClient, ServerState
from drorch.providers.mysql.flavor import Statement
from drorch.replication.roles import errant_between

MASK = "********"
VERIFY_SECONDS = 15.0


@dataclass(frozen=True)
class Change:
    site: str
    what: str  # for people
    statements: tuple[str | Statement, ...]
    needs: tuple[str, ...]  # privilege requirements (names in the flavor's table)


@dataclass(frozen=True)
class SetupPlan:
    primary: str
    changes: list[Change]
    notes: list[str] = field(default_factory=list)
    accounts: dict[str, str] = field(default_factory=dict)  # site -> the account the plan runs as
    replicates_from: dict[str, str] = field(default_factory=dict)  # replica -> source, as the plan leaves them
    semi_sync_source: bool = False  # the primary waits for a semi-sync ack once the plan ran
    after_failover: bool = False  # the primary is not the configured one: a failover moved it

    def shown(self, secrets: list[str]) -> list[dict[str, Any]]:
        """The changes with every statement rendered as the server gets it, secrets masked."""
        return [{"site": c.site, "what": c.what, "statements": [render(s, secrets) for s in c.statements]}
                for c in self.changes]


def render(statement: str | Statement, secrets: list[str]) -> str:
    """A statement as sent (values quoted by the driver's own escaping), any secret value masked."""
    if isinstance(statement, str):
        return statement
    sql, args = statement
    shown = tuple(MASK if isinstance(a, str) and a in secrets else a for a in args)
    return sql % tuple(pymysql.converters.escape_item(a, "utf8mb4") for a in shown)


def plan(estate: Estate) -> SetupPlan:
    """Everything setup would change, in order; raises (changing nothing) when it must not go on."""
    config = estate.config
    topology = config.data.mysql
    clients = {site: admin_client(estate, site) for site in config.sites}
    observed, silent = {}, {}
    for site, db in clients.items():
        try:
            observed[site] = observe(db, topology.replication_user, estate.replication_password(),
                                     config.data.heartbeat.table)
        except pymysql.MySQLError as exc:
            silent[site] = f"{site}'s database does not answer as {db.address.user} ({_reason(exc)})"
    primary = _refuse_unsafe_topology(estate, config.primary_site, observed, silent)
    after_failover = primary != config.primary_site
    if silent and not after_failover:
        raise RefusedForSafety(f"{next(iter(silent.values()))}: setup needs every server. Nothing was changed")
    notes: list[str] = []
    if after_failover:
        wanted = _after_failover(estate, primary, observed, silent, notes)
    else:
        wanted = dict(topology.replicates_from)
    changes = _primary_changes(estate, primary, observed[primary], observed)
    for site, source in wanted.items():
        changes += _replica_changes(estate, site, source, observed, notes)
    for site in config.sites:
        if site != primary and site not in wanted and not after_failover:
            notes.append(f"{site}: not in data.mysql.replicates_from, left as it is")
    _refuse_missing_privileges(clients, observed, changes)
    return SetupPlan(primary, changes, notes, {site: o.grants.account for site, o in observed.items()}, wanted,
                     _semi_sync_source_on(estate, primary, observed), after_failover)


def _after_failover(estate: Estate, primary: str, observed: dict[str, Observed], silent: dict[str, str],
                    notes: list[str]) -> dict[str, str]:
    """The replicas setup keeps or puts on ``primary`` after a failover: every answering standby, as the
    failover's repoint step does; the configured primary only when it already follows ``primary``."""
    configured = estate.config.primary_site
    target = estate.config.site(primary).mysql
    notes.append(f"{primary} is the writable primary since a failover (the config's is {configured}): the other "
                 f"sites are set up as replicas of {primary}, as the failover left them; `drorch failback` returns "
                 "to the configured topology")
    wanted = {}
    for site in estate.config.sites:
        if site == primary:
            continue
        if site in silent:
            then = ("`drorch failback` reprotects it" if site == configured
                    else "run `drorch replication setup` again")
            notes.append(f"{silent[site]}: left as it is; {then} when it answers")
            continue
        replica = observed[site].state.replica
        follows = replica is not None and (replica.source_host, replica.source_port) == (target.host, target.port)
        if site == configured and not follows:
            notes.append(f"{site}: the configured primary, not replicating from {primary}: left to `drorch failback` "
                         f"(or `drorch replication reprotect {site}`), which checks what it holds that {primary} "
                         "lacks and measures what the failover lost")
            continue
        wanted[site] = primary
    return wanted


def _semi_sync_source_on(estate: Estate, primary: str, observed: dict[str, Observed]) -> bool:
    """The primary waits for semi-sync acks when a partner of its pair answers (none to wait for otherwise:
    every commit would stall for the timeout), as ``mysql.promote`` decides."""
    return any(partner in observed for partner in _pairs(estate, primary))


def apply(estate: Estate, found: SetupPlan) -> None:
    """Run the plan's changes in order (the primary's first), then check the replicas run."""
    for change in found.changes:
        admin_client(estate, change.site).execute(*change.statements)
    if found.changes:
        _verify(estate, found)


def secrets(estate: Estate) -> list[str]:
    """Values to mask in anything shown: the replication and admin passwords."""
    from drorch.config.secrets import read_secret

    topology = estate.config.data.mysql
    found = [estate.replication_password()]
    if topology.admin_password is not None:
        found.append(read_secret(estate.config, topology.admin_password, "data.mysql.admin_password"))
    return found


def _refuse_unsafe_topology(estate: Estate, primary: str, observed: dict[str, Observed],
                            silent: dict[str, str]) -> str:
    """The primary setup builds around: the configured one, or the one writable database after a failover.

    After a failover the config's primary is fenced (or gone) and another serves: setup must not undo
    that. Other writable servers are fine while the configured primary is writable too (fresh servers
    all are): each is fenced and pointed at its source only after the errant check finds nothing it
    alone holds.
    """
    writable = [site for site, o in observed.items() if not o.state.read_only]
    others = [site for site in writable if site != primary]
    if primary in writable or not others:
        return primary
    state = "does not answer" if primary in silent else "is read-only"
    if len(others) > 1:
        raise RefusedForSafety(f"more than one writable database ({', '.join(others)}) and {primary}, the configured "
                               f"primary, {state}: split-brain; fence all but one by hand (SET GLOBAL "
                               "read_only=ON) and run again. Nothing was changed")
    return others[0]


def _accounts(estate: Estate, site: str, o: Observed) -> list[Change]:
    topology = estate.config.data.mysql
    user, password, flavor = topology.replication_user, estate.replication_password(), o.flavor
    statements: list[str | Statement] = []
    needs: list[str] = []
    what: list[str] = []
    if not o.repl_exists:
        statements.append(flavor.create_user_sql(user, "%", password))
        needs.append("create_user")
        what.append(f"create the replication user '{user}'@'%'")
    elif o.repl_password_wrong:
        statements.append(flavor.set_password_sql(user, "%", password))
        needs.append("create_user")
        what.append(f"set the configured password on '{user}'@'%'")
    if not o.repl_granted:
        statements.append(flavor.grant_replication_sql(user, "%"))
        needs.append("grant_replication")
        what.append(f"grant REPLICATION SLAVE to '{user}'@'%'")
    if not statements:
        return []
    return [Change(site, "; ".join(what) + " (not binlogged)", (flavor.no_binlog_sql(), *statements),
                   ("skip_binlog", *needs))]


def _semi_sync_changes(site: str, o: Observed, source_on: bool, replica_on: bool, pair: bool,
                       wrap: tuple[list[str], list[str]] = ([], [])) -> list[Change]:
    semi, flavor = o.state.semi_sync, o.flavor
    changes = []
    install = flavor.semi_sync_install_sql(source=source_on and not semi.available,
                                           replica=replica_on and not semi.available)
    if install:
        changes.append(Change(site, "install the semi-sync plugins", tuple(install), ("install_plugin",)))
    if (semi.source_enabled, semi.replica_enabled) != (source_on, replica_on):
        stop, start = wrap
        what = "semi-sync " + ", ".join(f"{side} {_onoff(was)} -> {_onoff(now)}" for side, was, now in (
            ("source", semi.source_enabled, source_on), ("replica", semi.replica_enabled, replica_on)) if was != now)
        changes.append(Change(site, what, (*stop, *flavor.semi_sync_sql(source_on, replica_on), *start),
                              ("semi_sync_source", "semi_sync_replica", *(("replica_admin",) if stop else ()))))
    if pair and semi.wait_point != "AFTER_SYNC":
        changes.append(Change(site, f"semi-sync wait point {semi.wait_point or '?'} -> AFTER_SYNC",
                              (flavor.wait_point_sql(),), ("semi_sync_source",)))
    return changes


def _onoff(value: bool) -> str:
    return "ON" if value else "OFF"


def _pairs(estate: Estate, site: str) -> list[str]:
    return [b if a == site else a for a, b in estate.config.data.mysql.semi_sync if site in (a, b)]


def _heartbeat(estate: Estate, site: str, o: Observed, logged: bool) -> list[Change]:
    if o.heartbeat_exists:
        return []
    table = estate.config.data.heartbeat.table
    schema = table.split(".")[0]
    statements = (f"CREATE DATABASE IF NOT EXISTS `{schema}`", create_table_sql(table))
    if logged:
        return [Change(site, f"create the heartbeat table {table} (replicates)", statements, (f"create_in:{schema}",))]
    return [Change(site, f"create the heartbeat table {table} (not binlogged)", (o.flavor.no_binlog_sql(), *statements),
                   ("skip_binlog", f"create_in:{schema}"))]


def _primary_changes(estate: Estate, site: str, o: Observed, observed: dict[str, Observed]) -> list[Change]:
    flavor, state = o.flavor, o.state
    changes = _accounts(estate, site, o)
    if state.replica is not None:
        changes.append(Change(site, "stop replicating: it is the configured primary",
                              (flavor.stop_replica_sql(), flavor.reset_replica_sql()), ("replica_admin",)))
    changes += _semi_sync_changes(site, o, source_on=_semi_sync_source_on(estate, site, observed), replica_on=False,
                                  pair=bool(_pairs(estate, site)))
    changes += _heartbeat(estate, site, o, logged=True)
    if state.read_only:
        changes.append(Change(site, "read_only ON -> OFF (the primary accepts writes)", tuple(flavor.unfence_sql()),
                              ("read_only",)))
    return changes


def _replica_changes(estate: Estate, site: str, source: str, observed: dict[str, Observed],
                     notes: list[str]) -> list[Change]:
    o = observed[site]
    flavor, state, replica = o.flavor, o.state, o.state.replica
    target = estate.config.site(source).mysql
    user = estate.config.data.mysql.replication_user
    changes = _accounts(estate, site, o)
    if not state.read_only:
        changes.append(Change(site, "read_only OFF -> ON (a replica takes no writes)", tuple(flavor.fence_sql()),
                              ("read_only",)))
    changes += _heartbeat(estate, site, o, logged=False)
    pointed = replica is not None and (replica.source_host, replica.source_port) == (target.host, target.port)
    access_denied = replica is not None and "access denied" in replica.last_io_error.lower()
    channel_ok = pointed and replica is not None and replica.source_user == user and replica.gtid_positioning
    semi_on = source in _pairs(estate, site)
    _refuse_errant(estate, site, source, state, notes, moving=not pointed)
    if not channel_ok or access_denied:
        changes += _semi_sync_changes(site, o, False, semi_on, bool(_pairs(estate, site)))
        password = estate.replication_password()
        was = "nothing" if replica is None else f"{replica.source_host}:{replica.source_port}"
        changes.append(Change(site, f"replicate from {source} (was: {was}) with GTID positioning", (
            flavor.stop_replica_sql(), *flavor.adopt_position_sql(),
            flavor.change_source_sql(target.host, target.port, user, password), flavor.start_replica_sql()),
            ("replica_admin",)))
        return changes
    changes += _semi_sync_changes(site, o, False, semi_on, bool(_pairs(estate, site)),
                                  wrap=([flavor.stop_replica_sql()], [flavor.start_replica_sql()]))
    if replica is not None and not (replica.io_running and replica.sql_running) and \
            not any(flavor.start_replica_sql() in c.statements for c in changes):
        changes.append(Change(site, "start replication", (flavor.start_replica_sql(),), ("replica_admin",)))
    return changes


def _refuse_errant(estate: Estate, site: str, source: str, state: ServerState, notes: list[str],
                   moving: bool) -> None:
    """Pointing (or keeping) a replica at a source is safe only when it holds nothing that source lacks."""
    replica = state.replica
    now = "nothing" if replica is None else (site_at(estate, replica.source_host, replica.source_port)
                                            or f"{replica.source_host}:{replica.source_port}")
    found = errant_between(estate.mysql(site), estate.mysql(source))
    if found:
        where = f"replicates from {source}" if now == source else f"replicates from {now}, configured: {source},"
        raise RefusedForSafety(
            f"{site} {where} but it holds {found.count} transaction(s) {source} "
            f"never had (errant GTIDs: {found}), so replicating from {source} would break or hide them. Nothing was "
            f"changed. Fix: `drorch replication reprotect {site} --rebuild` copies {source}'s data over it")
    if state.replica is not None and moving:
        notes.append(f"{site}: replicates from {now}, not from {source}: re-pointed (it holds nothing {source} "
                     "lacks)")


def _reason(exc: pymysql.MySQLError) -> str:
    return str(exc.args[1]) if len(exc.args) > 1 else str(exc)


def _refuse_missing_privileges(clients: dict[str, MySQLClient], observed: dict[str, Observed],
                               changes: list[Change]) -> None:
    problems = []
    for site, o in observed.items():
        needs = ["read_accounts", *(n for c in changes if c.site == site for n in c.needs)]
        missing: list[tuple[str, str]] = []
        for need in dict.fromkeys(needs):
            for privilege in o.grants.missing(o.flavor.requirement(need)):
                if privilege not in missing:
                    missing.append(privilege)
        if missing:
            address = clients[site].address
            grants = "; ".join(grant_statements(o.grants.account, missing))
            problems.append(f"{site} ({address.host}:{address.port}) as {o.grants.account} lacks "
                            f"{', '.join(p for p, _s in missing)}: run {grants}")
    if problems:
        raise RefusedForSafety("the account setup runs as lacks privileges the plan needs (set data.mysql.admin_user "
                               "to an account that has them, or grant them). Nothing was changed:\n  "
                               + "\n  ".join(problems))


def _verify(estate: Estate, found: SetupPlan) -> None:
    """Replicas running from their sources, the primary's semi-sync active: else the change did not take."""
    deadline = time.monotonic() + VERIFY_SECONDS
    while True:
        problems = []
        for site, source in found.replicates_from.items():
            replica = estate.mysql(site).state().replica
            if replica is None or not (replica.io_running and replica.sql_running):
                error = "" if replica is None else (replica.last_io_error or replica.last_sql_error)
                problems.append(f"{site} is not replicating from {source}" + (f": {error}" if error else ""))
        primary = found.primary
        acks = [p for p in _pairs(estate, primary) if found.replicates_from.get(p) == primary]
        if found.semi_sync_source and acks and not estate.mysql(primary).state().semi_sync.source_active:
            problems.append(f"semi-sync did not become active on {primary}")
        if not problems:
            return
        if time.monotonic() > deadline:
            raise OperationFailed("setup ran its plan, but: " + "; ".join(problems))
        time.sleep(0.2)

