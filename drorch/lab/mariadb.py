"""Real MariaDB servers for the lab: one per site, GTID replication, semi-sync.

A template datadir is built once per lab (users and the demo schema created in
bootstrap mode, so they exist identically everywhere with an empty GTID history)
and copied per site; the replicas then follow seoul with ``MASTER_USE_GTID``.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from drorch.data.heartbeat import create_table_sql
from drorch.errors import InvalidInput, OperationFailed
from drorch.lab import processes
from drorch.lab.layout import SEMI_SYNC_REPLICA, SERVER_IDS, LabLayout
from drorch.providers.mysql.client import MySQLClient, ServerAddress

SEMI_SYNC_TIMEOUT_MS = 3000


@dataclass(frozen=True)
class Accounts:
    """Passwords of the lab's four accounts (admin for tools, repl, app, drorch least-privilege)."""

    admin: str
    repl: str
    app: str
    drorch: str


DRORCH_GRANTS = (
    "READ_ONLY ADMIN, REPLICATION SLAVE ADMIN, REPLICATION MASTER ADMIN, BINLOG MONITOR, "
    "SLAVE MONITOR, CONNECTION ADMIN, PROCESS, RELOAD"
)


def find_program(name: str) -> str:
    """Locate a MariaDB program on PATH or in sbin; a clear error names the Debian package."""
    found = shutil.which(name)
    if found is None:
        raise InvalidInput(
            f"'{name}' was not found on PATH: install the Debian package mariadb-server "
            "(apt-get install -y mariadb-server mariadb-client; it lives in /usr/sbin, which must be on PATH) "
            "and run the command again"
        )
    return found


def _bootstrap_sql(accounts: Accounts) -> str:
    return f"""
FLUSH PRIVILEGES;
CREATE USER 'lab_admin'@'%' IDENTIFIED BY '{accounts.admin}';
GRANT ALL PRIVILEGES ON *.* TO 'lab_admin'@'%' WITH GRANT OPTION;
CREATE USER 'repl'@'%' IDENTIFIED BY '{accounts.repl}';
GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%';
CREATE DATABASE shop;
CREATE TABLE shop.orders (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  client_ref VARCHAR(64) NOT NULL UNIQUE,
  site VARCHAR(16) NOT NULL,
  amount INT NOT NULL DEFAULT 0,
  created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB;
CREATE USER 'app'@'%' IDENTIFIED BY '{accounts.app}';
GRANT SELECT, INSERT, UPDATE, DELETE ON shop.* TO 'app'@'%';
CREATE DATABASE drorch;
{create_table_sql("drorch.heartbeat")};
CREATE USER 'drorch'@'%' IDENTIFIED BY '{accounts.drorch}';
GRANT {DRORCH_GRANTS} ON *.* TO 'drorch'@'%';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE ON drorch.* TO 'drorch'@'%';
GRANT SELECT ON shop.* TO 'drorch'@'%';
"""


def build_template(layout: LabLayout, accounts: Accounts) -> Path:
    """Create the shared template datadir (about a second)."""
    template = layout.root / "mariadb" / "template"
    shutil.rmtree(template, ignore_errors=True)
    template.parent.mkdir(parents=True, exist_ok=True)
    common = ["--no-defaults", f"--datadir={template}", "--user=root", "--innodb-log-file-size=16M"]
    _run(
        [find_program("mariadb-install-db"), *common, "--auth-root-authentication-method=normal",
         "--skip-test-db"],
        "mariadb-install-db",
    )
    _run([find_program("mariadbd"), *common, "--bootstrap", f"--log-error={template}.bootstrap.log"],
         "mariadbd --bootstrap", stdin=_bootstrap_sql(accounts))
    return template


def _run(argv: list[str], what: str, stdin: str | None = None) -> None:
    result = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        raise OperationFailed(f"{what} failed (exit {result.returncode}): {result.stderr.strip()[-500:]}")


def server_argv(layout: LabLayout, site: str, host: str, port: int, server_id: int | None = None) -> list[str]:
    """The same role-neutral command line for every site.

    Every server starts read-only with semi-sync off: a crashed old primary that
    comes back must never take writes beside the new one. Roles are set with SQL.
    """
    base = layout.mariadb_dir(site)
    return [
        find_program("mariadbd"), "--no-defaults", "--user=root",
        f"--datadir={base / 'data'}", f"--socket={base / 'mysqld.sock'}",
        f"--pid-file={base / 'mysqld.pid'}", f"--log-error={base / 'error.log'}",
        f"--bind-address={host}", f"--port={port}", f"--server-id={server_id or SERVER_IDS[site]}",
        "--log-bin=mysql-bin", "--log-slave-updates", "--binlog-format=ROW", "--gtid-strict-mode=ON",
        "--relay-log=relay-bin", "--skip-name-resolve", "--innodb-buffer-pool-size=64M",
        "--innodb-log-file-size=16M", "--performance-schema=OFF", "--max-connections=300",
        "--sync-binlog=1", "--innodb-flush-log-at-trx-commit=1", "--slave-net-timeout=4",
        "--rpl-semi-sync-master-wait-point=AFTER_SYNC",
        f"--rpl-semi-sync-master-timeout={SEMI_SYNC_TIMEOUT_MS}",
        "--read-only=ON",
    ]


def start_server(layout: LabLayout, site: str, template: Path, host: str, port: int,
                 netns: str | None = None) -> processes.Tracked:
    """A fresh copy of the template and the server on ``host:port`` (inside network namespace ``netns`` if given)."""
    base = layout.mariadb_dir(site)
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    shutil.copytree(template, base / "data")
    return processes.start(layout.run, layout.logs, f"mariadb-{site}", server_argv(layout, site, host, port),
                           netns=netns)


def admin_client(site: str, host: str, port: int, password: str) -> MySQLClient:
    return MySQLClient(ServerAddress(site, host, port, "lab_admin", password, tls="disabled"))


def wait_ready(client: MySQLClient, item: processes.Tracked, timeout: float) -> None:
    """Wait until the server answers queries; fail early if its process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.ping():
            return
        if not processes.is_alive(item):
            raise OperationFailed(f"{item.name} exited during start-up; see its error.log")
        time.sleep(0.1)
    raise OperationFailed(f"{item.name} did not answer within {timeout:.0f} s")


def make_primary(primary: MySQLClient) -> None:
    """The lab's home primary: semi-sync source, writable."""
    primary.execute(*primary.flavor.semi_sync_sql(source=True, replica=False), *primary.flavor.unfence_sql())


def start_replication(replica: MySQLClient, source_host: str, source_port: int, repl_password: str) -> None:
    flavor = replica.flavor
    replica.execute(
        flavor.stop_replica_sql(),
        *flavor.semi_sync_sql(source=False, replica=replica.address.name == SEMI_SYNC_REPLICA),
        flavor.change_source_sql(source_host, source_port, "repl", repl_password),
        flavor.start_replica_sql(),
    )


def wait_replicating(replica: MySQLClient, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    state = replica.state()
    while time.monotonic() < deadline:
        state = replica.state()
        if state.replica and state.replica.io_running and state.replica.sql_running:
            return
        time.sleep(0.1)
    detail = state.replica.last_io_error if state.replica else "no replication configured"
    raise OperationFailed(f"{replica.address.name} did not start replicating: {detail}")


def wait_semi_sync(primary: MySQLClient, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if primary.state().semi_sync_source_active:
            return
        time.sleep(0.1)
    raise OperationFailed(f"semi-sync did not become active on {primary.address.name}")
