"""The SQL dialect of each server family, kept in one place.

MariaDB and MySQL 8 name replication statements, status columns, privileges and
tools differently (MySQL 8.4 removed the old ``MASTER`` syntax entirely). Everything
else in drorch speaks in terms of this adapter and never writes replication SQL itself.

Statements that carry values (hosts, accounts, passwords) are ``(sql, args)`` pairs:
the driver quotes the values, so a password never becomes part of SQL text that
could be logged. Plain-string statements contain no ``%`` for the same driver.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

Statement = tuple[str, tuple[Any, ...]]

SYSTEM_SCHEMAS = frozenset({"mysql", "information_schema", "performance_schema", "sys"})
"""Never copied by a rebuild: each server keeps its own accounts, plugins and replication position."""


@dataclass(frozen=True)
class ReplicaStatus:
    """What a replica says about its replication channel."""

    source_host: str
    source_port: int
    io_running: bool
    sql_running: bool
    received_gtid: str
    last_io_error: str
    last_sql_error: str
    source_user: str = ""
    gtid_positioning: bool = False  # MariaDB Using_Gtid=Slave_Pos, MySQL Auto_Position=1
    source_origin: str = ""  # the source's server_id (MariaDB) or server_uuid (MySQL), "" when never connected


@dataclass(frozen=True)
class SemiSync:
    """Semi-synchronous replication as one server sees it (both of its sides)."""

    source_enabled: bool = False
    source_active: bool = False  # False while enabled: the source fell back to async, no RPO guarantee
    replica_enabled: bool = False
    replica_active: bool = False
    wait_point: str = ""
    clients: int = 0  # semi-sync replicas connected to this source
    timeout_ms: int | None = None
    available: bool = True  # False: MySQL without the semi-sync plugins installed


Privilege = tuple[str, str]
"""A privilege and its scope: ``("CREATE", "*")`` globally, ``("CREATE", "drorch")`` on one database."""
Requirement = tuple[Privilege, ...]
"""Alternatives: holding any one of them is enough."""


class Flavor(Protocol):
    name: str
    programs: tuple[str, str]  # the dump and client programs a rebuild streams between

    def replica_status_sql(self) -> str: ...
    def parse_replica_status(self, row: dict[str, Any]) -> ReplicaStatus: ...
    def state_sql(self) -> str: ...
    def semi_sync_variables_sql(self) -> str: ...
    def semi_sync_status_sql(self) -> str: ...
    def parse_semi_sync(self, variables: dict[str, str], status: dict[str, str]) -> SemiSync: ...
    def change_source_sql(self, host: str, port: int, user: str, password: str) -> Statement: ...
    def start_replica_sql(self) -> str: ...
    def stop_replica_sql(self) -> str: ...
    def reset_replica_sql(self) -> str: ...
    def fence_sql(self) -> list[str]: ...
    def unfence_sql(self) -> list[str]: ...
    def wait_for_gtid_sql(self, gtid: str, timeout_seconds: float) -> Statement: ...
    def semi_sync_sql(self, source: bool, replica: bool) -> list[str]: ...
    def wait_point_sql(self) -> str: ...
    def semi_sync_install_sql(self, source: bool, replica: bool) -> list[str]: ...
    def adopt_position_sql(self) -> list[str]: ...
    def missing_gtid_sql(self, old_gtid: str) -> Statement | None: ...
    def history_sql(self) -> str: ...
    def no_binlog_sql(self) -> str: ...
    def account_exists_sql(self, user: str, host: str) -> Statement: ...
    def account_grants_sql(self, user: str, host: str) -> Statement: ...
    def create_user_sql(self, user: str, host: str, password: str) -> Statement: ...
    def set_password_sql(self, user: str, host: str, password: str) -> Statement: ...
    def grant_replication_sql(self, user: str, host: str) -> Statement: ...
    def reset_binlog_sql(self, version: str) -> list[str]: ...
    def admin_writes_sql(self) -> list[str]: ...
    def dump_position_sql(self) -> str: ...
    def adopt_dump_sql(self, history: str) -> list[str | Statement]: ...
    def dump_args(self, databases: list[str]) -> list[str]: ...
    def tls_options(self, mode: str) -> list[str]: ...
    def pause_apply_sql(self) -> str: ...
    def resume_apply_sql(self) -> str: ...
    def dump_position_pattern(self) -> str: ...
    def restored_position_sql(self, position: str) -> list[str | Statement]: ...
    def requirement(self, need: str) -> list[Requirement]: ...


def _running(value: Any) -> bool:
    return str(value).lower() == "yes"


def _on(value: str | None) -> bool:
    return str(value).upper() == "ON"


# Privileges each kind of change needs; each requirement is a set of alternatives (ALL PRIVILEGES covers any).
_COMMON: dict[str, list[Requirement]] = {
    "read_accounts": [(("SELECT", "mysql"), ("SELECT", "*"))],
    "create_user": [(("CREATE USER", "*"),)],
    "grant_replication": [(("REPLICATION SLAVE", "*"),), (("GRANT OPTION", "*"),)],
    "drop_databases": [(("DROP", "*"),)],
    "load_dump": [((p, "*"),) for p in ("CREATE", "INSERT", "ALTER", "INDEX", "LOCK TABLES", "CREATE ROUTINE",
                                        "ALTER ROUTINE", "EVENT", "TRIGGER", "CREATE VIEW", "REFERENCES")],
    "reset_binlog": [(("RELOAD", "*"),)],
}
_MARIADB: dict[str, list[Requirement]] = {
    "skip_binlog": [(("BINLOG ADMIN", "*"), ("SUPER", "*"))],
    "read_only": [(("READ_ONLY ADMIN", "*"),)],  # 10.11 took it out of SUPER
    "replica_admin": [(("REPLICATION SLAVE ADMIN", "*"), ("SUPER", "*"))],
    "semi_sync_source": [(("REPLICATION MASTER ADMIN", "*"), ("SUPER", "*"))],
    "semi_sync_replica": [(("REPLICATION SLAVE ADMIN", "*"), ("SUPER", "*"))],
    "install_plugin": [],
    "dump_source": [((p, "*"),) for p in ("SELECT", "SHOW VIEW", "TRIGGER", "EVENT", "LOCK TABLES", "RELOAD")]
    + [(("BINLOG MONITOR", "*"), ("SUPER", "*"))],
}
_SYSVARS: Requirement = (("SYSTEM_VARIABLES_ADMIN", "*"), ("SUPER", "*"))
_MYSQL8: dict[str, list[Requirement]] = {
    "skip_binlog": [(("SYSTEM_VARIABLES_ADMIN", "*"), ("SESSION_VARIABLES_ADMIN", "*"), ("SUPER", "*"))],
    "read_only": [_SYSVARS],
    "replica_admin": [(("REPLICATION_SLAVE_ADMIN", "*"), ("SUPER", "*"))],
    "semi_sync_source": [_SYSVARS],
    "semi_sync_replica": [_SYSVARS],
    "install_plugin": [(("INSERT", "mysql"), ("INSERT", "*"))],
    "dump_source": [((p, "*"),) for p in ("SELECT", "SHOW VIEW", "TRIGGER", "EVENT", "LOCK TABLES", "RELOAD")]
    + [(("REPLICATION CLIENT", "*"), ("SUPER", "*"))],
}


def _requirement(table: dict[str, list[Requirement]], need: str) -> list[Requirement]:
    if need.startswith("create_in:"):  # CREATE on one database (it may create that database too)
        schema = need.split(":", 1)[1]
        return [(("CREATE", schema), ("CREATE", "*"))]
    found = table.get(need, _COMMON.get(need))
    if found is None:
        raise KeyError(f"no privilege requirement named {need!r}")
    return found


class _Common:
    """Statements both families spell the same way."""

    def no_binlog_sql(self) -> str:
        """For changes each server gets on its own: logged, they would replicate as errant transactions."""
        return "SET SESSION sql_log_bin = 0"

    def account_exists_sql(self, user: str, host: str) -> Statement:
        return "SELECT COUNT(*) AS n FROM mysql.user WHERE User = %s AND Host = %s", (user, host)

    def account_grants_sql(self, user: str, host: str) -> Statement:
        return "SHOW GRANTS FOR %s@%s", (user, host)

    def create_user_sql(self, user: str, host: str, password: str) -> Statement:
        return "CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s", (user, host, password)

    def set_password_sql(self, user: str, host: str, password: str) -> Statement:
        return "ALTER USER %s@%s IDENTIFIED BY %s", (user, host, password)

    def grant_replication_sql(self, user: str, host: str) -> Statement:
        return "GRANT REPLICATION SLAVE ON *.* TO %s@%s", (user, host)

    def semi_sync_variables_sql(self) -> str:
        return "SHOW GLOBAL VARIABLES LIKE 'rpl_semi_sync_%'"

    def semi_sync_status_sql(self) -> str:
        return "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_%'"

    def _semi_sync(self, variables: dict[str, str], status: dict[str, str], source: str, replica: str) -> SemiSync:
        v = {k.lower(): value for k, value in variables.items()}
        s = {k.lower(): value for k, value in status.items()}
        timeout = v.get(f"rpl_semi_sync_{source}_timeout")
        return SemiSync(
            source_enabled=_on(v.get(f"rpl_semi_sync_{source}_enabled")),
            source_active=_on(s.get(f"rpl_semi_sync_{source}_status")),
            replica_enabled=_on(v.get(f"rpl_semi_sync_{replica}_enabled")),
            replica_active=_on(s.get(f"rpl_semi_sync_{replica}_status")),
            wait_point=str(v.get(f"rpl_semi_sync_{source}_wait_point", "")).upper(),
            clients=int(s.get(f"rpl_semi_sync_{source}_clients") or 0),
            timeout_ms=int(timeout) if timeout not in (None, "") else None,
            available=f"rpl_semi_sync_{source}_enabled" in v and f"rpl_semi_sync_{replica}_enabled" in v,
        )

    def tls_options(self, mode: str) -> list[str]:
        """Client option-file lines for the endpoint's TLS mode (MariaDB client spelling)."""
        return {"disabled": ["skip-ssl"], "required": ["ssl", "ssl-verify-server-cert"]}.get(mode, [])


class MariaDB(_Common):
    """MariaDB 10.x: ``CHANGE MASTER ... MASTER_USE_GTID``, ``MASTER_GTID_WAIT``, built-in semi-sync."""

    name = "mariadb"
    programs = ("mariadb-dump", "mariadb")

    def replica_status_sql(self) -> str:
        return "SHOW SLAVE STATUS"

    def parse_replica_status(self, row: dict[str, Any]) -> ReplicaStatus:
        origin = row.get("Master_Server_Id")
        return ReplicaStatus(
            source_host=str(row.get("Master_Host", "")),
            source_port=int(row.get("Master_Port") or 0),
            io_running=_running(row.get("Slave_IO_Running")),
            sql_running=_running(row.get("Slave_SQL_Running")),
            received_gtid=str(row.get("Gtid_IO_Pos") or ""),
            last_io_error=str(row.get("Last_IO_Error") or ""),
            last_sql_error=str(row.get("Last_SQL_Error") or ""),
            source_user=str(row.get("Master_User") or ""),
            gtid_positioning=str(row.get("Using_Gtid") or "").lower() == "slave_pos",
            source_origin=str(origin) if origin not in (None, "", 0, "0") else "",
        )

    def state_sql(self) -> str:
        return (
            "SELECT @@GLOBAL.read_only AS ro, @@GLOBAL.gtid_current_pos AS cur, "
            "@@GLOBAL.gtid_binlog_pos AS bin, @@GLOBAL.gtid_binlog_state AS history, @@GLOBAL.server_id AS origin"
        )

    def parse_semi_sync(self, variables: dict[str, str], status: dict[str, str]) -> SemiSync:
        return self._semi_sync(variables, status, "master", "slave")

    def change_source_sql(self, host: str, port: int, user: str, password: str) -> Statement:
        return (
            "CHANGE MASTER TO MASTER_HOST=%s, MASTER_PORT=%s, MASTER_USER=%s, MASTER_PASSWORD=%s, "
            "MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1",
            (host, port, user, password),
        )

    def start_replica_sql(self) -> str:
        return "START SLAVE"

    def stop_replica_sql(self) -> str:
        return "STOP SLAVE"

    def reset_replica_sql(self) -> str:
        return "RESET SLAVE ALL"

    def fence_sql(self) -> list[str]:
        return ["SET GLOBAL read_only = ON"]

    def unfence_sql(self) -> list[str]:
        return ["SET GLOBAL read_only = OFF"]

    def wait_for_gtid_sql(self, gtid: str, timeout_seconds: float) -> Statement:
        return "SELECT MASTER_GTID_WAIT(%s, %s) AS result", (gtid, timeout_seconds)

    def adopt_position_sql(self) -> list[str]:
        """Start replicating after everything this server already has (a former primary's own writes too)."""
        return ["SET GLOBAL gtid_slave_pos = @@GLOBAL.gtid_current_pos"]

    def missing_gtid_sql(self, old_gtid: str) -> Statement | None:
        """MariaDB has no GTID set arithmetic in SQL: positions are compared per domain instead."""
        return None

    def history_sql(self) -> str:
        """The last transaction of every (domain, server) pair logged here: divergence shows per pair."""
        return "SELECT @@GLOBAL.gtid_binlog_state AS history, @@GLOBAL.server_id AS origin"

    def semi_sync_sql(self, source: bool, replica: bool) -> list[str]:
        on = {True: "ON", False: "OFF"}
        return [
            f"SET GLOBAL rpl_semi_sync_master_enabled = {on[source]}",
            f"SET GLOBAL rpl_semi_sync_slave_enabled = {on[replica]}",
        ]

    def wait_point_sql(self) -> str:
        """AFTER_SYNC: a commit is visible only once a replica has it, so failover loses no acknowledged write."""
        return "SET GLOBAL rpl_semi_sync_master_wait_point = AFTER_SYNC"

    def semi_sync_install_sql(self, source: bool, replica: bool) -> list[str]:
        return []  # built into the server since 10.3

    def admin_writes_sql(self) -> list[str]:
        """A fenced server still takes the admin's writes: READ_ONLY ADMIN bypasses read_only."""
        return []

    def reset_binlog_sql(self, version: str) -> list[str]:
        """Forget this server's binlog and replication position (a rebuild's divergent history goes with them)."""
        return ["RESET MASTER", "SET GLOBAL gtid_slave_pos = ''"]

    def dump_position_sql(self) -> str:
        """Where a loaded ``--gtid --master-data`` dump left the server (it sets gtid_slave_pos)."""
        return "SELECT @@GLOBAL.gtid_slave_pos AS position"

    def adopt_dump_sql(self, history: str) -> list[str | Statement]:
        """Make the dump's history this server's binlog state, so it can serve as a source later.

        A literal value: ``SET GLOBAL gtid_binlog_state = @@GLOBAL.gtid_slave_pos`` hangs 10.11.
        """
        return ["RESET MASTER", ("SET GLOBAL gtid_binlog_state = %s", (history,))]

    def dump_args(self, databases: list[str]) -> list[str]:
        return ["--single-transaction", "--gtid", "--master-data=1", "--routines", "--events", "--triggers",
                "--databases", *databases]

    def pause_apply_sql(self) -> str:
        """A backup of a replica holds its applier for a moment, so two snapshots can share one position."""
        return "STOP SLAVE SQL_THREAD"

    def resume_apply_sql(self) -> str:
        return "START SLAVE SQL_THREAD"

    def dump_position_pattern(self) -> str:
        """Where a ``--master-data`` dump states its snapshot in its first lines: binlog file and offset, which
        ``BINLOG_GTID_POS`` turns into the GTID position (10.11 prints the GTID itself only at the end)."""
        return r"MASTER_LOG_FILE='([^']+)',\s*MASTER_LOG_POS=(\d+)"

    def restored_position_sql(self, position: str) -> list[str | Statement]:
        """After a point-in-time restore: the restored position is both the binlog state and the replica position,
        so the server can serve as a source or follow one from exactly there."""
        return ["RESET MASTER", ("SET GLOBAL gtid_binlog_state = %s", (position,)),
                ("SET GLOBAL gtid_slave_pos = %s", (position,))]

    def requirement(self, need: str) -> list[Requirement]:
        return _requirement(_MARIADB, need)


class MySQL8(_Common):
    """MySQL 8.0.26+ and 8.4: ``CHANGE REPLICATION SOURCE``, ``super_read_only``, GTID auto-position."""

    name = "mysql8"
    programs = ("mysqldump", "mysql")

    def replica_status_sql(self) -> str:
        return "SHOW REPLICA STATUS"

    def parse_replica_status(self, row: dict[str, Any]) -> ReplicaStatus:
        return ReplicaStatus(
            source_host=str(row.get("Source_Host", "")),
            source_port=int(row.get("Source_Port") or 0),
            io_running=_running(row.get("Replica_IO_Running")),
            sql_running=_running(row.get("Replica_SQL_Running")),
            received_gtid=str(row.get("Retrieved_Gtid_Set") or ""),
            last_io_error=str(row.get("Last_IO_Error") or ""),
            last_sql_error=str(row.get("Last_SQL_Error") or ""),
            source_user=str(row.get("Source_User") or ""),
            gtid_positioning=str(row.get("Auto_Position")) == "1",
            source_origin=str(row.get("Source_UUID") or ""),
        )

    def state_sql(self) -> str:
        return ("SELECT @@GLOBAL.read_only AS ro, @@GLOBAL.gtid_executed AS cur, @@GLOBAL.gtid_executed AS bin, "
                "@@GLOBAL.gtid_executed AS history, @@GLOBAL.server_uuid AS origin")

    def parse_semi_sync(self, variables: dict[str, str], status: dict[str, str]) -> SemiSync:
        return self._semi_sync(variables, status, "source", "replica")

    def change_source_sql(self, host: str, port: int, user: str, password: str) -> Statement:
        return (
            "CHANGE REPLICATION SOURCE TO SOURCE_HOST=%s, SOURCE_PORT=%s, SOURCE_USER=%s, "
            "SOURCE_PASSWORD=%s, SOURCE_AUTO_POSITION=1, SOURCE_CONNECT_RETRY=1, GET_SOURCE_PUBLIC_KEY=1",
            (host, port, user, password),
        )

    def start_replica_sql(self) -> str:
        return "START REPLICA"

    def stop_replica_sql(self) -> str:
        return "STOP REPLICA"

    def reset_replica_sql(self) -> str:
        return "RESET REPLICA ALL"

    def fence_sql(self) -> list[str]:
        return ["SET GLOBAL super_read_only = ON"]

    def unfence_sql(self) -> list[str]:
        return ["SET GLOBAL super_read_only = OFF", "SET GLOBAL read_only = OFF"]

    def wait_for_gtid_sql(self, gtid: str, timeout_seconds: float) -> Statement:
        return "SELECT WAIT_FOR_EXECUTED_GTID_SET(%s, %s) AS result", (gtid, timeout_seconds)

    def adopt_position_sql(self) -> list[str]:
        """Auto-positioning already starts from gtid_executed: nothing to do."""
        return []

    def missing_gtid_sql(self, old_gtid: str) -> Statement | None:
        return "SELECT GTID_SUBTRACT(%s, @@GLOBAL.gtid_executed) AS missing", (old_gtid,)

    def history_sql(self) -> str:
        return "SELECT @@GLOBAL.gtid_executed AS history, @@GLOBAL.server_uuid AS origin"

    def semi_sync_sql(self, source: bool, replica: bool) -> list[str]:
        on = {True: "ON", False: "OFF"}
        return [
            f"SET GLOBAL rpl_semi_sync_source_enabled = {on[source]}",
            f"SET GLOBAL rpl_semi_sync_replica_enabled = {on[replica]}",
        ]

    def wait_point_sql(self) -> str:
        return "SET GLOBAL rpl_semi_sync_source_wait_point = AFTER_SYNC"

    def semi_sync_install_sql(self, source: bool, replica: bool) -> list[str]:
        """The semi-sync plugins (8.0.26+ names); only those not loaded yet are asked for."""
        return (["INSTALL PLUGIN rpl_semi_sync_source SONAME 'semisync_source.so'"] if source else []) + (
            ["INSTALL PLUGIN rpl_semi_sync_replica SONAME 'semisync_replica.so'"] if replica else [])

    def admin_writes_sql(self) -> list[str]:
        """super_read_only stops even the admin: keep read_only (clients stay out), let the rebuild write."""
        return ["SET GLOBAL super_read_only = OFF"]

    def reset_binlog_sql(self, version: str) -> list[str]:
        """8.4 removed RESET MASTER; 8.0 lacks its replacement (added in 8.2)."""
        major_minor = tuple(int(part) for part in [*version.split("-")[0].split("."), "0", "0"][:2])
        return ["RESET BINARY LOGS AND GTIDS" if major_minor >= (8, 2) else "RESET MASTER"]

    def dump_position_sql(self) -> str:
        return "SELECT @@GLOBAL.gtid_executed AS position"

    def adopt_dump_sql(self, history: str) -> list[str | Statement]:
        return []  # the dump's SET @@GLOBAL.GTID_PURGED already made it this server's history

    def dump_args(self, databases: list[str]) -> list[str]:
        return ["--single-transaction", "--set-gtid-purged=ON", "--routines", "--events", "--triggers",
                "--databases", *databases]

    def pause_apply_sql(self) -> str:
        return "STOP REPLICA SQL_THREAD"

    def resume_apply_sql(self) -> str:
        return "START REPLICA SQL_THREAD"

    def dump_position_pattern(self) -> str:
        return r"GTID_PURGED\s*=\s*(?:/\*!80000 '\+'\*/ )?'([^']*)'"

    def restored_position_sql(self, position: str) -> list[str | Statement]:
        return []  # the dump's GTID_PURGED and the replayed transactions already are gtid_executed

    def tls_options(self, mode: str) -> list[str]:
        return [{"disabled": "ssl-mode=DISABLED", "required": "ssl-mode=VERIFY_IDENTITY"}.get(mode,
                                                                                              "ssl-mode=PREFERRED")]

    def requirement(self, need: str) -> list[Requirement]:
        return _requirement(_MYSQL8, need)


FLAVORS: dict[str, Flavor] = {"mariadb": MariaDB(), "mysql8": MySQL8()}
