"""The administrative account for setup and rebuilds, and what an account may do.

Probes and playbooks run with each site's own least-privilege account. Creating the
replication user or reloading a whole server needs far more, so those use
``data.mysql.admin_user`` when the config names one (else the site's account), and
check the account's grants *before* changing anything: a half-built topology is
worse than a clear "run this GRANT first".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import pymysql

from drorch.config.secrets import read_secret
from drorch.providers.estate import Estate
from drorch.providers.mysql.client import MySQLClient, ServerState
from drorch.providers.mysql.flavor import Flavor, Privilege, Requirement

_GRANT = re.compile(r"^GRANT (?P<privileges>.+?) ON (?P<scope>\S+) TO ", re.IGNORECASE)


def admin_client(estate: Estate, site: str) -> MySQLClient:
    """The site's server logged in as the admin account (or the site's own account when none is configured)."""
    topology = estate.config.data.mysql
    db = estate.mysql(site)
    if topology.admin_user is None or topology.admin_password is None:
        return db
    password = read_secret(estate.config, topology.admin_password, "data.mysql.admin_password")
    return MySQLClient(replace(db.address, user=topology.admin_user, password=password))


@dataclass(frozen=True)
class Grants:
    """The privileges an account holds, by scope ("*" for global, else a database name)."""

    account: str  # 'user'@'host' as the server authenticated it
    held: frozenset[Privilege]

    def allows(self, privilege: Privilege) -> bool:
        """A global grant covers every database; ALL PRIVILEGES covers everything except GRANT OPTION."""
        name, scope = privilege
        names = {name} if name == "GRANT OPTION" else {name, "ALL PRIVILEGES", "ALL"}
        return any((n, s) in self.held for n in names for s in {scope, "*"})

    def missing(self, requirements: list[Requirement]) -> list[Privilege]:
        """For each unmet requirement, its first alternative (what to grant)."""
        return [alternatives[0] for alternatives in requirements
                if alternatives and not any(self.allows(p) for p in alternatives)]


def read_grants(db: MySQLClient) -> Grants:
    """The logged-in account's grants (``SHOW GRANTS`` needs no privilege); password hashes are never kept."""
    with db.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT CURRENT_USER() AS account")
        account = str((cur.fetchone() or {}).get("account", ""))
        cur.execute("SHOW GRANTS")
        lines = [str(next(iter(row.values()))) for row in cur.fetchall()]
    return Grants(_quoted(account), frozenset(p for line in lines for p in parse_grant(line)))


def parse_grant(line: str) -> list[Privilege]:
    """One SHOW GRANTS line as (privilege, scope) pairs; table, column, role and proxy grants count for nothing."""
    match = _GRANT.match(line)
    if match is None:  # role grants, PROXY: not privileges on data or the server
        return []
    scope = match["scope"]
    if scope == "*.*":
        where = "*"
    elif scope.endswith(".*"):
        where = scope[:-2].strip("`")
    else:  # table or routine level: not enough for anything drorch does
        return []
    names = [re.sub(r"\(.*?\)", "", part).strip().upper() for part in match["privileges"].split(",")]
    found = [(name, where) for name in names if name]
    if re.search(r"WITH GRANT OPTION\s*$", line, re.IGNORECASE):
        found.append(("GRANT OPTION", where))
    return found


def _quoted(account: str) -> str:
    user, _, host = account.rpartition("@")
    return f"'{user}'@'{host}'"


def grant_statements(account: str, missing: list[Privilege]) -> list[str]:
    """The exact GRANT statements that would give ``account`` the ``missing`` privileges."""
    by_scope: dict[str, list[str]] = {}
    for name, scope in missing:
        by_scope.setdefault(scope, [])
        if name not in by_scope[scope]:
            by_scope[scope].append(name)
    statements = []
    for scope, names in by_scope.items():
        option = "GRANT OPTION" in names
        plain = [n for n in names if n != "GRANT OPTION"] or ["USAGE"]
        target = "*.*" if scope == "*" else f"`{scope}`.*"
        suffix = " WITH GRANT OPTION" if option else ""
        statements.append(f"GRANT {', '.join(plain)} ON {target} TO {account}{suffix}")
    return statements


@dataclass(frozen=True)
class Observed:
    """What setup needs to know about one server, read with the account setup runs as."""

    flavor: Flavor
    state: ServerState
    grants: Grants
    repl_exists: bool  # unknown (False) when the account may not read mysql.user: the privilege check refuses then,
    # naming every GRANT a first setup could need in one go
    repl_granted: bool
    repl_password_wrong: bool
    heartbeat_exists: bool


def observe(db: MySQLClient, repl_user: str, repl_password: str, heartbeat_table: str) -> Observed:
    flavor = db.flavor
    grants = read_grants(db)
    state = db.state(attempts=1)
    exists = granted = wrong = False
    if not grants.missing(flavor.requirement("read_accounts")):
        exists = bool(int(db.query(*flavor.account_exists_sql(repl_user, "%"))[0]["n"]))
        if exists:
            lines = [str(next(iter(row.values()))) for row in db.query(*flavor.account_grants_sql(repl_user, "%"))]
            held = Grants("", frozenset(p for line in lines for p in parse_grant(line)))
            granted = held.allows(("REPLICATION SLAVE", "*"))
            wrong = _login_refused(db, repl_user, repl_password)
    schema, table = heartbeat_table.split(".")
    rows = db.query("SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
                    "AND TABLE_NAME = %s", (schema, table))
    return Observed(flavor, state, grants, exists, granted, wrong, bool(int(rows[0]["n"])))


def _login_refused(db: MySQLClient, user: str, password: str) -> bool:
    """Whether the server refuses the configured password (a replica would fail to connect just the same)."""
    try:
        MySQLClient(replace(db.address, user=user, password=password)).open(read_timeout=2.0).close()
    except pymysql.err.OperationalError as exc:
        return bool(exc.args and exc.args[0] == 1045)
    return False
