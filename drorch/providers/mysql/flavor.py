"""The SQL dialect of each server family, kept in one place.

MariaDB and MySQL 8 name replication statements and status columns differently
(MySQL 8.4 removed the old ``MASTER`` syntax entirely). Everything else in drorch
speaks in terms of this adapter and never writes replication SQL itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

Statement = tuple[str, tuple[Any, ...]]


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


class Flavor(Protocol):
    name: str

    def replica_status_sql(self) -> str: ...
    def parse_replica_status(self, row: dict[str, Any]) -> ReplicaStatus: ...
    def state_sql(self) -> str: ...
    def change_source_sql(self, host: str, port: int, user: str, password: str) -> Statement: ...
    def start_replica_sql(self) -> str: ...
    def stop_replica_sql(self) -> str: ...
    def reset_replica_sql(self) -> str: ...
    def fence_sql(self) -> list[str]: ...
    def unfence_sql(self) -> list[str]: ...
    def wait_for_gtid_sql(self, gtid: str, timeout_seconds: float) -> Statement: ...
    def semi_sync_sql(self, source: bool, replica: bool) -> list[str]: ...
    def adopt_position_sql(self) -> list[str]: ...
    def missing_gtid_sql(self, old_gtid: str) -> Statement | None: ...
    def history_sql(self) -> str: ...


def _running(value: Any) -> bool:
    return str(value).lower() == "yes"


class MariaDB:
    """MariaDB 10.x: ``CHANGE MASTER ... MASTER_USE_GTID``, ``MASTER_GTID_WAIT``, built-in semi-sync."""

    name = "mariadb"

    def replica_status_sql(self) -> str:
        return "SHOW SLAVE STATUS"

    def parse_replica_status(self, row: dict[str, Any]) -> ReplicaStatus:
        return ReplicaStatus(
            source_host=str(row.get("Master_Host", "")),
            source_port=int(row.get("Master_Port") or 0),
            io_running=_running(row.get("Slave_IO_Running")),
            sql_running=_running(row.get("Slave_SQL_Running")),
            received_gtid=str(row.get("Gtid_IO_Pos") or ""),
            last_io_error=str(row.get("Last_IO_Error") or ""),
            last_sql_error=str(row.get("Last_SQL_Error") or ""),
        )

    def state_sql(self) -> str:
        return (
            "SELECT @@GLOBAL.read_only AS ro, @@GLOBAL.gtid_current_pos AS cur, "
            "@@GLOBAL.gtid_binlog_pos AS bin"
        )

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
        return "SELECT @@GLOBAL.gtid_binlog_state AS history"

    def semi_sync_sql(self, source: bool, replica: bool) -> list[str]:
        on = {True: "ON", False: "OFF"}
        return [
            f"SET GLOBAL rpl_semi_sync_master_enabled = {on[source]}",
            f"SET GLOBAL rpl_semi_sync_slave_enabled = {on[replica]}",
        ]


class MySQL8:
    """MySQL 8.0.23+ and 8.4: ``CHANGE REPLICATION SOURCE``, ``super_read_only``, GTID auto-position."""

    name = "mysql8"

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
        )

    def state_sql(self) -> str:
        return "SELECT @@GLOBAL.read_only AS ro, @@GLOBAL.gtid_executed AS cur, @@GLOBAL.gtid_executed AS bin"

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
        return "SELECT @@GLOBAL.gtid_executed AS history"

    def semi_sync_sql(self, source: bool, replica: bool) -> list[str]:
        on = {True: "ON", False: "OFF"}
        return [
            f"SET GLOBAL rpl_semi_sync_source_enabled = {on[source]}",
            f"SET GLOBAL rpl_semi_sync_replica_enabled = {on[replica]}",
        ]


FLAVORS: dict[str, Flavor] = {"mariadb": MariaDB(), "mysql8": MySQL8()}
