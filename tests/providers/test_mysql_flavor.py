"""The SQL dialect adapters (MariaDB, MySQL 8.0 and 8.4), GTID positions and sets, grants."""

from __future__ import annotations

from typing import Any

import pymysql.converters
import pytest

from drorch.providers.mysql.admin import Grants, grant_statements, parse_grant
from drorch.providers.mysql.flavor import FLAVORS, MariaDB, MySQL8, ReplicaStatus
from drorch.providers.mysql.gtid import Errant, GtidPosition, count_gtid_set, errant, merge_history

PASSWORD = "pa'ss%s\\word"  # a quote, a format placeholder and a backslash: all must stay out of the SQL text


def render(sql: str, params: tuple[Any, ...]) -> str:
    """What PyMySQL sends for ``cursor.execute(sql, params)`` (client-side interpolation, no server needed)."""
    return sql % tuple(pymysql.converters.escape_item(param, "utf8mb4") for param in params)


def test_registry_maps_names_to_adapters() -> None:
    assert isinstance(FLAVORS["mariadb"], MariaDB)
    assert isinstance(FLAVORS["mysql8"], MySQL8)
    assert {name: flavor.name for name, flavor in FLAVORS.items()} == {"mariadb": "mariadb", "mysql8": "mysql8"}


# --- MariaDB --------------------------------------------------------------------------------------------------


def test_mariadb_change_source_uses_master_syntax_and_gtid_slave_pos() -> None:
    sql, params = MariaDB().change_source_sql("10.0.0.5", 3307, "repl", PASSWORD)
    assert sql.startswith("CHANGE MASTER TO ")
    assert "MASTER_HOST=%s" in sql and "MASTER_PORT=%s" in sql and "MASTER_USER=%s" in sql
    assert "MASTER_PASSWORD=%s" in sql
    assert "MASTER_USE_GTID=slave_pos" in sql
    assert "SOURCE" not in sql
    assert params == ("10.0.0.5", 3307, "repl", PASSWORD)


def test_mysql8_change_source_uses_replication_source_syntax_and_auto_position() -> None:
    sql, params = MySQL8().change_source_sql("10.0.0.5", 3307, "repl", PASSWORD)
    assert sql.startswith("CHANGE REPLICATION SOURCE TO ")
    assert "SOURCE_HOST=%s" in sql and "SOURCE_PORT=%s" in sql and "SOURCE_USER=%s" in sql
    assert "SOURCE_PASSWORD=%s" in sql
    assert "SOURCE_AUTO_POSITION=1" in sql
    assert "MASTER" not in sql  # removed in MySQL 8.4
    assert params == ("10.0.0.5", 3307, "repl", PASSWORD)


@pytest.mark.parametrize("flavor", [MariaDB(), MySQL8()], ids=["mariadb", "mysql8"])
def test_password_is_a_query_parameter_never_part_of_the_sql(flavor: MariaDB | MySQL8) -> None:
    sql, params = flavor.change_source_sql("db.example", 3306, "repl", PASSWORD)
    assert PASSWORD not in sql
    assert "pa'ss" not in sql
    assert sql.count("%s") == len(params) == 4  # and no other '%' that PyMySQL's interpolation would trip on
    assert sql.count("%") == 4
    rendered = render(sql, params)
    assert "'pa\\'ss%s\\\\word'" in rendered  # escaped as one quoted literal
    assert "'db.example'" in rendered and "=3306," in rendered


def test_mariadb_replica_control_statements() -> None:
    flavor = MariaDB()
    assert flavor.replica_status_sql() == "SHOW SLAVE STATUS"
    assert flavor.start_replica_sql() == "START SLAVE"
    assert flavor.stop_replica_sql() == "STOP SLAVE"
    assert flavor.reset_replica_sql() == "RESET SLAVE ALL"


def test_mysql8_replica_control_statements() -> None:
    flavor = MySQL8()
    assert flavor.replica_status_sql() == "SHOW REPLICA STATUS"
    assert flavor.start_replica_sql() == "START REPLICA"
    assert flavor.stop_replica_sql() == "STOP REPLICA"
    assert flavor.reset_replica_sql() == "RESET REPLICA ALL"


def test_mariadb_fencing_uses_read_only() -> None:
    assert MariaDB().fence_sql() == ["SET GLOBAL read_only = ON"]
    assert MariaDB().unfence_sql() == ["SET GLOBAL read_only = OFF"]


def test_mysql8_fencing_uses_super_read_only() -> None:
    assert MySQL8().fence_sql() == ["SET GLOBAL super_read_only = ON"]
    unfence = MySQL8().unfence_sql()
    # super_read_only must be turned off first: read_only = OFF while super_read_only is ON is refused.
    assert unfence == ["SET GLOBAL super_read_only = OFF", "SET GLOBAL read_only = OFF"]


def test_mariadb_waits_with_master_gtid_wait() -> None:
    sql, params = MariaDB().wait_for_gtid_sql("0-1-42", 5.0)
    assert sql == "SELECT MASTER_GTID_WAIT(%s, %s) AS result"
    assert params == ("0-1-42", 5.0)


def test_mysql8_waits_with_wait_for_executed_gtid_set() -> None:
    gtid = "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-42"
    sql, params = MySQL8().wait_for_gtid_sql(gtid, 5.0)
    assert sql == "SELECT WAIT_FOR_EXECUTED_GTID_SET(%s, %s) AS result"
    assert params == (gtid, 5.0)
    assert gtid not in sql


@pytest.mark.parametrize(("source", "replica", "expected"), [
    (True, False, ["SET GLOBAL rpl_semi_sync_master_enabled = ON", "SET GLOBAL rpl_semi_sync_slave_enabled = OFF"]),
    (False, True, ["SET GLOBAL rpl_semi_sync_master_enabled = OFF", "SET GLOBAL rpl_semi_sync_slave_enabled = ON"]),
])
def test_mariadb_semi_sync(source: bool, replica: bool, expected: list[str]) -> None:
    assert MariaDB().semi_sync_sql(source=source, replica=replica) == expected


@pytest.mark.parametrize(("source", "replica", "expected"), [
    (True, False, ["SET GLOBAL rpl_semi_sync_source_enabled = ON", "SET GLOBAL rpl_semi_sync_replica_enabled = OFF"]),
    (False, True, ["SET GLOBAL rpl_semi_sync_source_enabled = OFF", "SET GLOBAL rpl_semi_sync_replica_enabled = ON"]),
])
def test_mysql8_semi_sync(source: bool, replica: bool, expected: list[str]) -> None:
    assert MySQL8().semi_sync_sql(source=source, replica=replica) == expected


def test_state_queries_expose_ro_cur_bin_columns() -> None:
    mariadb, mysql8 = MariaDB().state_sql(), MySQL8().state_sql()
    for sql in (mariadb, mysql8):
        assert " AS ro" in sql and " AS cur" in sql and " AS bin" in sql
    assert "gtid_current_pos AS cur" in mariadb and "gtid_binlog_pos AS bin" in mariadb
    assert "gtid_executed AS cur" in mysql8 and "gtid_current_pos" not in mysql8


def test_adopt_position() -> None:
    assert MariaDB().adopt_position_sql() == ["SET GLOBAL gtid_slave_pos = @@GLOBAL.gtid_current_pos"]
    assert MySQL8().adopt_position_sql() == []


# --- replica status rows --------------------------------------------------------------------------------------

MARIADB_SLAVE_STATUS: dict[str, Any] = {
    "Slave_IO_State": "Waiting for master to send event",
    "Master_Host": "127.10.0.1",
    "Master_User": "repl",
    "Master_Port": 3306,
    "Connect_Retry": 1,
    "Master_Log_File": "mysql-bin.000003",
    "Read_Master_Log_Pos": 1234,
    "Relay_Log_File": "relay-bin.000002",
    "Relay_Log_Pos": 900,
    "Relay_Master_Log_File": "mysql-bin.000003",
    "Slave_IO_Running": "Yes",
    "Slave_SQL_Running": "No",
    "Last_Errno": 1062,
    "Last_Error": "Duplicate entry '7' for key 'PRIMARY'",
    "Exec_Master_Log_Pos": 1100,
    "Seconds_Behind_Master": None,
    "Last_IO_Errno": 0,
    "Last_IO_Error": "",
    "Last_SQL_Errno": 1062,
    "Last_SQL_Error": "Could not execute Write_rows_v1 event on table shop.orders; Duplicate entry '7'",
    "Master_Server_Id": 1,
    "Using_Gtid": "Slave_Pos",
    "Gtid_IO_Pos": "0-1-57",
    "Slave_SQL_Running_State": "",
}

MYSQL8_REPLICA_STATUS: dict[str, Any] = {
    "Replica_IO_State": "Waiting for source to send event",
    "Source_Host": "10.1.2.3",
    "Source_User": "repl",
    "Source_Port": 3307,
    "Connect_Retry": 1,
    "Source_Log_File": "binlog.000002",
    "Read_Source_Log_Pos": 4567,
    "Relay_Log_File": "relay.000002",
    "Replica_IO_Running": "Connecting",
    "Replica_SQL_Running": "Yes",
    "Last_Errno": 0,
    "Last_Error": "",
    "Seconds_Behind_Source": None,
    "Last_IO_Errno": 2003,
    "Last_IO_Error": "error connecting to source 'repl@10.1.2.3:3307' - retry-time: 1 retries: 3",
    "Last_SQL_Errno": 0,
    "Last_SQL_Error": "",
    "Source_UUID": "3e11fa47-71ca-11e1-9e33-c80aa9429562",
    "Retrieved_Gtid_Set": "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-42",
    "Executed_Gtid_Set": "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-40",
    "Auto_Position": 1,
}


def test_parse_mariadb_show_slave_status() -> None:
    assert MariaDB().parse_replica_status(MARIADB_SLAVE_STATUS) == ReplicaStatus(
        source_host="127.10.0.1",
        source_port=3306,
        io_running=True,
        sql_running=False,
        received_gtid="0-1-57",
        last_io_error="",
        last_sql_error="Could not execute Write_rows_v1 event on table shop.orders; Duplicate entry '7'",
        source_user="repl",
        gtid_positioning=True,
        source_origin="1",
    )


def test_parse_mysql8_show_replica_status() -> None:
    assert MySQL8().parse_replica_status(MYSQL8_REPLICA_STATUS) == ReplicaStatus(
        source_host="10.1.2.3",
        source_port=3307,
        io_running=False,  # "Connecting" is not running
        sql_running=True,
        received_gtid="3e11fa47-71ca-11e1-9e33-c80aa9429562:1-42",
        last_io_error="error connecting to source 'repl@10.1.2.3:3307' - retry-time: 1 retries: 3",
        last_sql_error="",
        source_user="repl",
        gtid_positioning=True,
        source_origin="3e11fa47-71ca-11e1-9e33-c80aa9429562",
    )


def test_status_rows_are_flavor_specific() -> None:
    """A MySQL 8 row read with the MariaDB adapter finds none of its columns (and vice versa)."""
    wrong = MariaDB().parse_replica_status(MYSQL8_REPLICA_STATUS)
    assert (wrong.source_host, wrong.source_port, wrong.io_running, wrong.sql_running) == ("", 0, False, False)
    wrong = MySQL8().parse_replica_status(MARIADB_SLAVE_STATUS)
    assert (wrong.source_host, wrong.source_port, wrong.io_running, wrong.sql_running) == ("", 0, False, False)


def test_parse_status_with_nulls_and_lowercase_yes() -> None:
    row = {"Master_Host": "h", "Master_Port": None, "Slave_IO_Running": "yes", "Slave_SQL_Running": "YES",
           "Gtid_IO_Pos": None, "Last_IO_Error": None, "Last_SQL_Error": None}
    assert MariaDB().parse_replica_status(row) == ReplicaStatus("h", 0, True, True, "", "", "")


# --- GtidPosition ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [None, "", "   ", "\n", " \n \t"])
def test_parse_empty(text: str | None) -> None:
    position = GtidPosition.parse(text)
    assert position == GtidPosition()
    assert position.domains == ()
    assert str(position) == ""


def test_parse_single() -> None:
    position = GtidPosition.parse("0-1-42")
    assert position.domains == ((0, 1, 42),)
    assert position.seq(0) == 42
    assert position.seq(1) == 0  # an unseen domain is at 0


def test_parse_multi_domain_is_sorted_by_domain() -> None:
    position = GtidPosition.parse("2-3-7,0-1-100,1-2-5")
    assert position.domains == ((0, 1, 100), (1, 2, 5), (2, 3, 7))
    assert [position.seq(d) for d in (0, 1, 2)] == [100, 5, 7]


def test_parse_whitespace_and_newlines() -> None:
    # The mysql client wraps long multi-domain values after the comma; values may also come padded.
    assert GtidPosition.parse("  0-1-100,\n1-2-5 ,\n 2-3-7\n") == GtidPosition.parse("0-1-100,1-2-5,2-3-7")


@pytest.mark.parametrize("text", ["0-1", "a-b-c", "0-1-2-3"])
def test_parse_rejects_malformed(text: str) -> None:
    with pytest.raises(ValueError):
        GtidPosition.parse(text)


@pytest.mark.parametrize("text", ["0-1-42", "0-1-100,1-2-5,2-3-7", "0-4294967295-9999999999"])
def test_str_round_trip(text: str) -> None:
    position = GtidPosition.parse(text)
    assert str(position) == text
    assert GtidPosition.parse(str(position)) == position


def test_str_is_canonical_order() -> None:
    assert str(GtidPosition.parse("1-2-5, 0-1-9")) == "0-1-9,1-2-5"


def test_covers() -> None:
    ahead = GtidPosition.parse("0-1-100,1-2-5")
    behind = GtidPosition.parse("0-1-90,1-2-5")
    other_domain = GtidPosition.parse("0-1-100,1-2-5,2-3-1")
    empty = GtidPosition()

    assert ahead.covers(behind)
    assert not behind.covers(ahead)
    assert ahead.covers(ahead)
    assert ahead.covers(empty)
    assert empty.covers(empty)
    assert not empty.covers(ahead)
    assert not ahead.covers(other_domain)  # domain 2 is missing entirely
    assert other_domain.covers(ahead)


def test_covers_compares_seq_per_domain_not_server_id() -> None:
    # After a failover the same domain continues under a new server id; seq is what counts.
    assert GtidPosition.parse("0-2-101").covers(GtidPosition.parse("0-1-100"))
    assert not GtidPosition.parse("0-2-99").covers(GtidPosition.parse("0-1-100"))


def test_missing_from() -> None:
    have = GtidPosition.parse("0-1-90,1-2-5")
    old_primary = GtidPosition.parse("0-1-100,1-2-3,2-3-4")
    assert have.missing_from(old_primary) == 10 + 0 + 4  # ahead in domain 1 does not offset the gap in domain 0
    assert old_primary.missing_from(have) == 2
    assert have.missing_from(have) == 0
    assert GtidPosition().missing_from(old_primary) == 107
    assert have.missing_from(GtidPosition()) == 0


def test_sort_key_orders_by_total_progress() -> None:
    a = GtidPosition.parse("0-1-10")
    b = GtidPosition.parse("0-1-12")
    c = GtidPosition.parse("0-1-11,1-2-5")
    assert a.sort_key() < b.sort_key() < c.sort_key()
    assert sorted([c, a, b], key=GtidPosition.sort_key) == [a, b, c]
    assert max([a, c, b], key=GtidPosition.sort_key) == c
    assert GtidPosition().sort_key() == (0,)


def test_mysql8_counts_missing_transactions_with_gtid_subtract() -> None:
    statement = MySQL8().missing_gtid_sql("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-42")
    assert statement is not None
    sql, args = statement
    assert "GTID_SUBTRACT(%s, @@GLOBAL.gtid_executed)" in sql and args == ("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-42",)
    assert MariaDB().missing_gtid_sql("0-1-5") is None
    assert count_gtid_set("") == 0
    assert count_gtid_set("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7") == 6
    assert count_gtid_set("a:1-3,\nb:10-19") == 13


# --- MySQL 8.0 / 8.4 statements for setup and rebuild (no MySQL server here: checked as text) -------------------


def test_status_rows_carry_user_positioning_and_source_origin() -> None:
    mariadb = MariaDB().parse_replica_status(MARIADB_SLAVE_STATUS)
    assert (mariadb.source_user, mariadb.gtid_positioning, mariadb.source_origin) == ("repl", True, "1")
    mysql8 = MySQL8().parse_replica_status(MYSQL8_REPLICA_STATUS)
    assert (mysql8.source_user, mysql8.gtid_positioning, mysql8.source_origin) == (
        "repl", True, "3e11fa47-71ca-11e1-9e33-c80aa9429562")
    never_connected = MariaDB().parse_replica_status({**MARIADB_SLAVE_STATUS, "Master_Server_Id": 0,
                                                      "Using_Gtid": "No"})
    assert (never_connected.source_origin, never_connected.gtid_positioning) == ("", False)


def test_state_queries_read_history_and_origin_in_the_same_query() -> None:
    assert "gtid_binlog_state AS history" in MariaDB().state_sql() and "server_id AS origin" in MariaDB().state_sql()
    assert "gtid_executed AS history" in MySQL8().state_sql() and "server_uuid AS origin" in MySQL8().state_sql()
    assert MySQL8().history_sql() == "SELECT @@GLOBAL.gtid_executed AS history, @@GLOBAL.server_uuid AS origin"


@pytest.mark.parametrize("flavor", [MariaDB(), MySQL8()], ids=["mariadb", "mysql8"])
def test_account_statements_keep_names_and_passwords_out_of_the_sql(flavor: MariaDB | MySQL8) -> None:
    for sql, params in (flavor.create_user_sql("repl", "%", PASSWORD), flavor.set_password_sql("repl", "%", PASSWORD)):
        assert PASSWORD not in sql and "repl" not in sql and params == ("repl", "%", PASSWORD)
    sql, params = flavor.create_user_sql("repl", "%", PASSWORD)
    assert render(sql, params) == "CREATE USER IF NOT EXISTS 'repl'@'%' IDENTIFIED BY 'pa\\'ss%s\\\\word'"
    assert render(*flavor.grant_replication_sql("repl", "%")) == "GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%'"
    assert render(*flavor.account_grants_sql("repl", "%")) == "SHOW GRANTS FOR 'repl'@'%'"
    assert flavor.no_binlog_sql() == "SET SESSION sql_log_bin = 0"


def test_mysql8_semi_sync_names_wait_point_and_plugins() -> None:
    flavor = MySQL8()
    assert flavor.wait_point_sql() == "SET GLOBAL rpl_semi_sync_source_wait_point = AFTER_SYNC"
    assert flavor.semi_sync_install_sql(source=True, replica=True) == [
        "INSTALL PLUGIN rpl_semi_sync_source SONAME 'semisync_source.so'",
        "INSTALL PLUGIN rpl_semi_sync_replica SONAME 'semisync_replica.so'"]
    assert flavor.semi_sync_install_sql(source=False, replica=False) == []
    assert MariaDB().wait_point_sql() == "SET GLOBAL rpl_semi_sync_master_wait_point = AFTER_SYNC"
    assert MariaDB().semi_sync_install_sql(source=True, replica=True) == []  # built in


def test_mysql8_parses_semi_sync_variables_and_status() -> None:
    variables = {"rpl_semi_sync_source_enabled": "ON", "rpl_semi_sync_source_timeout": "3000",
                 "rpl_semi_sync_source_wait_point": "AFTER_SYNC", "rpl_semi_sync_replica_enabled": "OFF"}
    status = {"Rpl_semi_sync_source_status": "OFF", "Rpl_semi_sync_source_clients": "0"}
    semi = MySQL8().parse_semi_sync(variables, status)
    assert (semi.source_enabled, semi.source_active, semi.replica_enabled, semi.wait_point, semi.timeout_ms,
            semi.available) == (True, False, False, "AFTER_SYNC", 3000, True)
    assert not MySQL8().parse_semi_sync({}, {}).available  # plugins not installed: no variables at all
    mariadb = MariaDB().parse_semi_sync({"rpl_semi_sync_master_enabled": "ON", "rpl_semi_sync_slave_enabled": "OFF"},
                                        {"Rpl_semi_sync_master_status": "ON", "Rpl_semi_sync_master_clients": "2"})
    assert (mariadb.source_enabled, mariadb.source_active, mariadb.clients) == (True, True, 2)


@pytest.mark.parametrize(("version", "expected"), [
    ("8.0.36", ["RESET MASTER"]),
    ("8.0.36-0ubuntu0.22.04.1", ["RESET MASTER"]),
    ("8.4.2", ["RESET BINARY LOGS AND GTIDS"]),  # 8.4 removed RESET MASTER
    ("8.4.0-commercial", ["RESET BINARY LOGS AND GTIDS"]),
])
def test_mysql8_resets_the_binlog_by_version(version: str, expected: list[str]) -> None:
    assert MySQL8().reset_binlog_sql(version) == expected


def test_rebuild_statements_per_flavor() -> None:
    assert MariaDB().reset_binlog_sql("10.11.6-MariaDB") == ["RESET MASTER", "SET GLOBAL gtid_slave_pos = ''"]
    assert MariaDB().dump_position_sql() == "SELECT @@GLOBAL.gtid_slave_pos AS position"
    # a literal position: SET GLOBAL gtid_binlog_state = @@GLOBAL.gtid_slave_pos hangs MariaDB 10.11
    assert MariaDB().adopt_dump_sql("0-2-9,0-1-42") == [
        "RESET MASTER", ("SET GLOBAL gtid_binlog_state = %s", ("0-2-9,0-1-42",))]
    assert MySQL8().dump_position_sql() == "SELECT @@GLOBAL.gtid_executed AS position"
    assert MySQL8().adopt_dump_sql("uuid:1-5") == []  # the dump's GTID_PURGED is the history


def test_dump_tools_and_arguments() -> None:
    assert MariaDB().programs == ("mariadb-dump", "mariadb")
    assert MariaDB().dump_args(["shop", "drorch"]) == [
        "--single-transaction", "--gtid", "--master-data=1", "--routines", "--events", "--triggers",
        "--databases", "shop", "drorch"]
    assert MySQL8().programs == ("mysqldump", "mysql")
    args = MySQL8().dump_args(["shop"])
    assert "--set-gtid-purged=ON" in args and "--single-transaction" in args and args[-2:] == ["--databases", "shop"]
    assert not any("master" in a for a in args)
    assert MariaDB().tls_options("disabled") == ["skip-ssl"]
    assert MySQL8().tls_options("disabled") == ["ssl-mode=DISABLED"]
    assert MySQL8().tls_options("required") == ["ssl-mode=VERIFY_IDENTITY"]


def test_privileges_are_named_per_flavor() -> None:
    assert MariaDB().requirement("read_only") == [(("READ_ONLY ADMIN", "*"),)]
    assert MySQL8().requirement("read_only") == [(("SYSTEM_VARIABLES_ADMIN", "*"), ("SUPER", "*"))]
    assert MySQL8().requirement("replica_admin") == [(("REPLICATION_SLAVE_ADMIN", "*"), ("SUPER", "*"))]
    assert MariaDB().requirement("create_in:drorch") == [(("CREATE", "drorch"), ("CREATE", "*"))]
    with pytest.raises(KeyError):
        MariaDB().requirement("no such need")


# --- grants and the GRANT to run ------------------------------------------------------------------------------

DRORCH_GRANTS = [
    "GRANT RELOAD, PROCESS, BINLOG MONITOR, READ_ONLY ADMIN, REPLICATION SLAVE ADMIN ON *.* TO `drorch`@`%` "
    "IDENTIFIED BY PASSWORD '*D638617741D0DBB81545E7B6015A1BE150A58F80'",
    "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE ON `drorch`.* TO `drorch`@`%`",
    "GRANT SELECT (id) ON `shop`.`orders` TO `drorch`@`%`",
    "GRANT `dba_role` TO `drorch`@`%`",
]


def test_grants_parse_global_and_database_scopes_and_ignore_the_rest() -> None:
    grants = Grants("'drorch'@'%'", frozenset(p for line in DRORCH_GRANTS for p in parse_grant(line)))
    assert grants.allows(("READ_ONLY ADMIN", "*")) and grants.allows(("CREATE", "drorch"))
    assert not grants.allows(("CREATE", "*")) and not grants.allows(("SELECT", "shop"))
    assert not any("D6386" in name for name, _scope in grants.held)  # the password hash is never kept
    assert grants.missing(MariaDB().requirement("grant_replication")) == [("REPLICATION SLAVE", "*"),
                                                                          ("GRANT OPTION", "*")]


def test_all_privileges_covers_everything_but_grant_option() -> None:
    held = frozenset(parse_grant("GRANT ALL PRIVILEGES ON *.* TO `admin`@`%`"))
    assert Grants("a", held).missing(MySQL8().requirement("replica_admin")) == []
    assert Grants("a", held).missing(MySQL8().requirement("grant_replication")) == [("GRANT OPTION", "*")]
    with_option = frozenset(parse_grant("GRANT ALL PRIVILEGES ON *.* TO `admin`@`%` WITH GRANT OPTION"))
    assert Grants("a", with_option).missing(MariaDB().requirement("grant_replication")) == []


def test_mysql8_dynamic_privileges_without_spaces() -> None:
    held = frozenset(parse_grant("GRANT REPLICATION_SLAVE_ADMIN,SYSTEM_VARIABLES_ADMIN ON *.* TO `drorch`@`%`"))
    assert Grants("a", held).missing(MySQL8().requirement("semi_sync_source")) == []


def test_grant_statements_name_the_account_and_the_grant_option() -> None:
    missing = [("CREATE USER", "*"), ("REPLICATION SLAVE", "*"), ("GRANT OPTION", "*"), ("CREATE", "drorch")]
    assert grant_statements("'drorch'@'%'", missing) == [
        "GRANT CREATE USER, REPLICATION SLAVE ON *.* TO 'drorch'@'%' WITH GRANT OPTION",
        "GRANT CREATE ON `drorch`.* TO 'drorch'@'%'"]
    assert grant_statements("'x'@'h'", [("GRANT OPTION", "*")]) == ["GRANT USAGE ON *.* TO 'x'@'h' WITH GRANT OPTION"]


def test_setup_renders_statements_with_secrets_masked() -> None:
    from drorch.replication.setup import render as shown

    statement = MySQL8().change_source_sql("db", 3306, "repl", PASSWORD)
    text = shown(statement, [PASSWORD])
    assert "SOURCE_PASSWORD='********'" in text and "pa'ss" not in text and "SOURCE_USER='repl'" in text
    assert shown("START REPLICA", [PASSWORD]) == "START REPLICA"


# --- errant transactions --------------------------------------------------------------------------------------


def test_errant_mariadb_per_domain_and_server_pair() -> None:
    found = errant("0-1-500,2-2-3", "0-1-500")  # an errant write in its own domain
    assert found.gtids == ("2-2-3",) and found.count == 3
    assert not errant("0-1-500", "0-1-500,0-2-510")
    lost = errant("0-1-105", "0-1-104,0-2-110")  # an old primary's last write, covered by position only
    assert lost.gtids == ("0-1-105",) and lost.count == 1
    assert errant("0-1-110", "0-1-100").count == 10
    assert not errant("0-1-101", "0-1-100", ignore_origin="1")  # the primary's own newer write: a race
    assert errant("", "0-1-5") == Errant() and not errant("", "")


def test_errant_mysql_gtid_sets_are_exact() -> None:
    a, b = "3e11fa47-71ca-11e1-9e33-c80aa9429562", "6e11fa47-71ca-11e1-9e33-c80aa9429562"
    found = errant(f"{a}:1-10,\n{b}:1-3", f"{a}:1-5:7,{b}:1-3")
    assert found.gtids == (f"{a}:6:8-10",) and found.count == 4
    assert not errant(f"{a}:1-10", f"{a}:1-12")
    assert not errant(f"{a}:1-10:20", f"{b}:1", ignore_origin=a.upper())
    tagged = errant(f"{a}:1-3:blue:1-2", f"{a}:1-3")  # MySQL 8.3+ tagged GTIDs
    assert tagged.gtids == (f"{a}:blue:1-2",) and tagged.count == 2


def test_a_fenced_server_takes_the_rebuilds_writes() -> None:
    assert MariaDB().admin_writes_sql() == []  # the admin's READ_ONLY ADMIN bypasses read_only
    assert MySQL8().admin_writes_sql() == ["SET GLOBAL super_read_only = OFF"]  # read_only stays ON


def test_a_rebuilt_server_keeps_the_sources_older_writers_with_the_position_last() -> None:
    # read before the dump: tokyo wrote 0-2-300 once; seoul's 0-1-500 and domain 1 are older than the dump
    assert merge_history("0-1-500,0-2-300,1-3-4", "0-2-610,1-3-4") == "0-1-500,0-2-610,1-3-4"
    assert merge_history("0-2-300,0-1-500", "0-1-520") == "0-2-300,0-1-520"  # MariaDB takes the last per domain
    assert merge_history("", "0-1-5") == "0-1-5"
    assert merge_history("a:1-3", "a:1-5") == "a:1-5"  # MySQL: the dump's GTID_PURGED already is the history
