"""Row counts and content checksums of every table, read inside one consistent snapshot.

``CHECKSUM TABLE`` ignores the reader's snapshot, so a backup of a live server
could never be compared with it; an order-independent ``BIT_XOR`` of a CRC32 per
row (as pt-table-checksum does) is read in the same ``REPEATABLE READ`` snapshot
as the GTID position, on the source at backup time and on the restored copy at
verification time, so equal numbers mean equal data.
"""

from __future__ import annotations

from typing import Any

from drorch.backup.layout import TableCheck
from drorch.replication.rebuild import ident

SNAPSHOT_SQL = "START TRANSACTION WITH CONSISTENT SNAPSHOT"


def base_tables(cur: Any, schemas: list[str]) -> list[tuple[str, str]]:
    if not schemas:
        return []
    marks = ", ".join(["%s"] * len(schemas))
    cur.execute(f"SELECT TABLE_SCHEMA AS s, TABLE_NAME AS t FROM information_schema.TABLES "
                f"WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA IN ({marks}) ORDER BY 1, 2", tuple(schemas))
    return [(str(r["s"]), str(r["t"])) for r in cur.fetchall()]


def _columns(cur: Any, schema: str, table: str) -> list[str]:
    cur.execute("SELECT COLUMN_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND "
                "TABLE_NAME = %s ORDER BY ORDINAL_POSITION", (schema, table))
    return [str(r["c"]) for r in cur.fetchall()]


def table_check(cur: Any, schema: str, table: str) -> TableCheck:
    """Rows and checksum of one table as the cursor's transaction sees it."""
    columns = [ident(c) for c in _columns(cur, schema, table)]
    nulls = f"CONCAT({', '.join(f'ISNULL({c})' for c in columns)})"
    row = f"CONCAT_WS('#', {', '.join(columns)}, {nulls})"
    cur.execute(f"SELECT COUNT(*) AS n, COALESCE(BIT_XOR(CRC32({row})), 0) AS c FROM {ident(schema)}.{ident(table)}")
    found = cur.fetchone() or {}
    return TableCheck(int(found.get("n") or 0), int(found.get("c") or 0))


def read_checks(cur: Any, schemas: list[str]) -> dict[str, TableCheck]:
    """Every base table of ``schemas`` (the caller holds the snapshot open)."""
    return {f"{schema}.{table}": table_check(cur, schema, table) for schema, table in base_tables(cur, schemas)}


def snapshot_position(cur: Any) -> str:
    """The GTID position of the cursor's consistent snapshot (MariaDB keeps its binlog coordinates)."""
    cur.execute("SHOW STATUS LIKE 'binlog_snapshot_%'")
    status = {str(r["Variable_name"]).lower(): str(r["Value"]) for r in cur.fetchall()}
    name, position = status.get("binlog_snapshot_file", ""), status.get("binlog_snapshot_position", "")
    if name and position:
        cur.execute("SELECT BINLOG_GTID_POS(%s, %s) AS p", (name, int(position)))
        return str((cur.fetchone() or {}).get("p") or "")
    cur.execute("SELECT @@GLOBAL.gtid_current_pos AS p")
    return str((cur.fetchone() or {}).get("p") or "")
