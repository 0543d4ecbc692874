"""Rebuild a site's database from the current primary, when reprotect must refuse.

A former primary holding transactions the primary never received (or a replica with
errant GTIDs) cannot rejoin: only replacing its data with a fresh copy of the primary
fixes it. The copy is a logical dump streamed from the primary straight into the site
(``mariadb-dump --single-transaction --gtid --master-data=1`` into ``mariadb``; the
MySQL tools on MySQL 8), then replication starts from the dump's GTID position.

What is not copied: the ``mysql`` and ``sys`` schemas. Each server keeps its own
accounts (copying them would replace the site's own drorch and admin passwords with
the primary's, and overwrite MariaDB's replication position table); accounts the
primary has and the site lacks are reported instead.

Safety: a marker table is created (unlogged) before anything is dropped and removed
only once the copy is loaded, so a rebuild that stops half-way is never mistaken for a
whole server by reprotect. Passwords reach the client programs through option files
of mode 0600 in a private temporary directory, never through their command lines.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from drorch.engine.topology import observe
from drorch.errors import InvalidInput, OperationFailed, RefusedForSafety
from drorch.measure.objectives import heartbeat_rpo
from drorch.providers.estate import Estate
from drorch.providers.mysql.admin import admin_client, grant_statements, read_grants
from drorch.providers.mysql.client import MySQLClient, ServerAddress
from drorch.providers.mysql.flavor import SYSTEM_SCHEMAS, Flavor
from drorch.providers.mysql.gtid import merge_history
from drorch.replication.rejoin import UNFINISHED_MARKER, Diverged, Reprotected, assess, reprotect
from drorch.replication.roles import fence, follow, history, semi_sync_partner, unreplicated, wait_applied

CATCH_UP_TIMEOUT = 120.0
CHUNK = 1 << 20
PROGRESS_EVERY = 0.5

CopyProgress = Callable[[int, float], None]
"""Called with the bytes copied so far and the seconds since the copy started."""


@dataclass(frozen=True)
class Rebuilt:
    site: str
    source: str
    discarded: list[str]  # what the site held that the primary never had
    bytes_copied: int
    copy_seconds: float
    seconds: float
    position: str  # the GTID position replication started from
    rpo_seconds: float | None  # heartbeat-measured loss of the failover that left the site behind
    missing_accounts: list[str]

    @property
    def mb_per_second(self) -> float:
        return round(self.bytes_copied / 1e6 / self.copy_seconds, 2) if self.copy_seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "mb_per_second": self.mb_per_second}


@dataclass(frozen=True)
class Outcome:
    """What ``reprotect_or_rebuild`` did: one of the two is set."""

    reprotected: Reprotected | None
    rebuilt: Rebuilt | None


def reprotect_or_rebuild(estate: Estate, site: str, rebuild_allowed: bool,
                         approve: Callable[[Diverged], None] | None = None, progress: CopyProgress | None = None,
                         timeout: float = CATCH_UP_TIMEOUT) -> Outcome:
    """Reprotect ``site`` when that is safe; else, only if ``rebuild_allowed`` (and ``approve`` does not raise),
    rebuild it from the primary. Without ``rebuild_allowed`` the refusal (exit 3) stands and nothing changes."""
    try:
        assess(estate, site)
    except Diverged as exc:
        if not rebuild_allowed:
            raise
        if approve is not None:
            approve(exc)
        return Outcome(None, rebuild(estate, site, exc.lost, progress, timeout))
    return Outcome(reprotect(estate, site, timeout), None)


def rebuild(estate: Estate, site: str, discarded: list[str] | None = None, progress: CopyProgress | None = None,
            timeout: float = CATCH_UP_TIMEOUT) -> Rebuilt:
    """Replace ``site``'s data with a copy of the current primary's and make it a caught-up replica of it."""
    primary = _primary_for(estate, site)
    target, source = admin_client(estate, site), admin_client(estate, primary)
    programs = _preflight(estate, site, target, primary, source)
    lost = discarded if discarded is not None else unreplicated(estate.mysql(site), estate.mysql(primary))
    rpo = _rpo(estate, site, primary)  # before the data goes: the site's heartbeats are the evidence
    started = time.monotonic()
    fence(target)
    _wipe(estate, target)
    before = history(source)  # every pair it names is in the dump that follows
    copied, copy_seconds = copy_schemas(source, target, user_schemas(source), programs, progress)
    position = _adopt(estate, target, before)
    endpoint = estate.config.site(primary).mysql
    topology = estate.config.data.mysql
    follow(target, endpoint.host, endpoint.port, topology.replication_user, estate.replication_password(),
           semi_sync_partner(estate, primary) == site)
    wait_applied(target, source.state().binlog_gtid, timeout)
    return Rebuilt(site, primary, list(lost), copied, round(copy_seconds, 3), round(time.monotonic() - started, 3),
                   position, rpo, _missing_accounts(source, target))


def _primary_for(estate: Estate, site: str) -> str:
    estate.config.site(site)
    topology = observe(estate)
    topology.refuse_split_brain()
    primary = topology.primary
    if site == primary:
        raise InvalidInput(f"{site} is the primary: a rebuild copies the primary onto another site")
    if topology.states[site] is None:
        raise RefusedForSafety(f"{site}'s database does not answer: start it, then run again")
    if topology.states[primary] is None:
        raise RefusedForSafety(f"the primary {primary} does not answer: a rebuild copies from it")
    return primary


def _preflight(estate: Estate, site: str, target: MySQLClient, primary: str,
               source: MySQLClient) -> tuple[str, str]:
    """Everything that could stop the rebuild half-way, checked before anything changes."""
    flavor = target.flavor
    if source.flavor.name != flavor.name:
        raise InvalidInput(f"{site} is {flavor.name} but {primary} is {source.flavor.name}: a logical copy between "
                           "server families is not supported")
    programs = client_programs(flavor)
    schema = estate.config.data.heartbeat.table.split(".")[0]
    problems = []
    for where, db, needs in (
        (site, target, ["read_only", "replica_admin", "reset_binlog", "skip_binlog", "drop_databases", "load_dump",
                        "read_accounts", f"create_in:{schema}"]),
        (primary, source, ["dump_source", "read_accounts"]),
    ):
        grants = read_grants(db)
        missing = list(dict.fromkeys(p for need in needs for p in grants.missing(flavor.requirement(need))))
        if missing:
            problems.append(f"{where} as {grants.account} lacks {', '.join(p for p, _s in missing)}: run "
                            + "; ".join(grant_statements(grants.account, missing)))
    if problems:
        raise RefusedForSafety("a rebuild needs wide privileges (set data.mysql.admin_user to an account that has "
                               "them). Nothing was changed:\n  " + "\n  ".join(problems))
    return programs


def _rpo(estate: Estate, site: str, primary: str) -> float | None:
    try:
        return heartbeat_rpo(estate, site, primary)
    except Exception:  # no heartbeat table on the site: the loss stays unmeasured, the rebuild goes on
        return None


def ident(name: str) -> str:
    """A quoted identifier for a statement the driver formats (``%`` doubled)."""
    return "`" + name.replace("`", "``").replace("%", "%%") + "`"


def _marker(estate: Estate) -> str:
    schema = estate.config.data.heartbeat.table.split(".")[0]
    return f"{ident(schema)}.{ident(UNFINISHED_MARKER)}"


def client_programs(flavor: Flavor) -> tuple[str, str]:
    """The flavor's dump and client programs on PATH (InvalidInput naming the package when missing)."""
    programs = []
    for name in flavor.programs:
        found = shutil.which(name)
        if found is None:
            package = "mariadb-client" if flavor.name == "mariadb" else "mysql-client"
            raise InvalidInput(f"'{name}' was not found on PATH: copies stream through it; install {package}")
        programs.append(found)
    return programs[0], programs[1]


def user_schemas(db: MySQLClient) -> list[str]:
    rows = db.query("SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA")
    return sorted(str(r["name"]) for r in rows if str(r["name"]).lower() not in SYSTEM_SCHEMAS)


def _wipe(estate: Estate, target: MySQLClient) -> None:
    """Mark the rebuild unfinished, forget replication and the binlog, drop every user schema.

    The heartbeat table's schema keeps only the marker: the copy brings the heartbeat table back.
    """
    flavor = target.flavor
    schema = estate.config.data.heartbeat.table.split(".")[0]
    version = str(target.query("SELECT VERSION() AS v")[0]["v"])
    target.execute(*flavor.admin_writes_sql(), flavor.stop_replica_sql(), flavor.reset_replica_sql(),
                   flavor.no_binlog_sql(),
                   f"CREATE DATABASE IF NOT EXISTS {ident(schema)}",
                   f"CREATE TABLE IF NOT EXISTS {_marker(estate)} (started_at DOUBLE)")
    drops = [f"DROP DATABASE IF EXISTS {ident(name)}" for name in user_schemas(target) if name != schema]
    tables = target.query("SELECT TABLE_NAME AS name, TABLE_TYPE AS kind FROM information_schema.TABLES "
                          "WHERE TABLE_SCHEMA = %s AND TABLE_NAME <> %s", (schema, UNFINISHED_MARKER))
    drops += [f"DROP {'VIEW' if 'VIEW' in str(t['kind']) else 'TABLE'} IF EXISTS {ident(schema)}.{ident(t['name'])}"
              for t in tables]
    target.execute(*flavor.reset_binlog_sql(version), flavor.no_binlog_sql(), *drops)


def options_file(path: Path, address: ServerAddress, flavor: Flavor, extra: list[str]) -> Path:
    """A client option file only this user can read: the password never appears on a command line."""
    for quote in ('"', "'"):
        if quote not in address.password:
            break
    else:
        raise InvalidInput(f"{address.name}: the admin password holds both quote characters, which a client "
                           "option file cannot carry; choose another password for the rebuild account")
    password = address.password.replace("\\", "\\\\").replace("\n", "\\n")
    lines = ["[client]", f"host={address.host}", f"port={address.port}", f"user={address.user}",
             f"password={quote}{password}{quote}", *flavor.tls_options(address.tls), *extra]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


def copy_schemas(source: MySQLClient, target: MySQLClient, schemas: list[str], programs: tuple[str, str],
                 progress: CopyProgress | None) -> tuple[int, float]:
    """Dump ``schemas`` from ``source`` (one consistent snapshot) straight into ``target``; returns (bytes, seconds).

    Rebuilds copy the primary into a site; isolated drills copy a replica into a scratch server."""
    flavor = target.flavor
    with tempfile.TemporaryDirectory(prefix="drorch-rebuild-") as tmp:
        here = Path(tmp)
        source_file = options_file(here / "source.cnf", source.address, flavor, [])
        target_file = options_file(here / "target.cnf", target.address, flavor,
                                   [f"init-command={flavor.no_binlog_sql()}"])
        with open(here / "dump.err", "wb+") as dump_err, open(here / "load.err", "wb+") as load_err:
            dump = subprocess.Popen([programs[0], f"--defaults-extra-file={source_file}", *flavor.dump_args(schemas)],
                                    stdout=subprocess.PIPE, stderr=dump_err, stdin=subprocess.DEVNULL)
            load = subprocess.Popen([programs[1], f"--defaults-extra-file={target_file}"], stdin=subprocess.PIPE,
                                    stdout=subprocess.DEVNULL, stderr=load_err)
            copied, seconds = _copy(dump, load, progress)
            failed = [f"{Path(program).name} exited {p.returncode}: {error_tail(err)}"
                      for program, p, err in ((programs[0], dump, dump_err), (programs[1], load, load_err))
                      if p.returncode != 0]
    if failed:
        raise OperationFailed(f"copying {source.address.name} into {target.address.name} failed ({'; '.join(failed)}). "
                              f"{target.address.name} is fenced, holds a partial copy and is marked unfinished: fix "
                              f"the cause and run `drorch replication reprotect {target.address.name} --rebuild` again")
    return copied, seconds


def _copy(dump: subprocess.Popen[bytes], load: subprocess.Popen[bytes],
          progress: CopyProgress | None) -> tuple[int, float]:
    assert dump.stdout is not None and load.stdin is not None
    reader: IO[bytes] = dump.stdout
    started = last = time.monotonic()
    copied = 0
    try:
        while chunk := os.read(reader.fileno(), CHUNK):
            load.stdin.write(chunk)
            copied += len(chunk)
            now = time.monotonic()
            if progress is not None and now - last >= PROGRESS_EVERY:
                progress(copied, now - started)
                last = now
        load.stdin.close()
    except BrokenPipeError:  # the client stopped reading: its exit code and error tell why
        dump.kill()
    finally:
        dump.wait()
        load.wait()
        reader.close()
    seconds = time.monotonic() - started
    if progress is not None:
        progress(copied, seconds)
    return copied, seconds


def error_tail(handle: IO[bytes]) -> str:
    handle.seek(0)
    return handle.read().decode("utf-8", "replace").strip()[-400:] or "no error output"


def _adopt(estate: Estate, target: MySQLClient, before: str) -> str:
    """Drop the unfinished marker, then take the dump's position (with the source's older writers) as the
    site's history; returns the position."""
    flavor = target.flavor
    position = str(target.query(flavor.dump_position_sql())[0]["position"] or "")
    target.execute(flavor.no_binlog_sql(), f"DROP TABLE IF EXISTS {_marker(estate)}")
    target.execute(*flavor.adopt_dump_sql(merge_history(before, position)))
    return position


def _missing_accounts(source: MySQLClient, target: MySQLClient) -> list[str]:
    def accounts(db: MySQLClient) -> set[str]:
        return {f"'{r['u']}'@'{r['h']}'" for r in db.query("SELECT User AS u, Host AS h FROM mysql.user")}

    try:
        return sorted(accounts(source) - accounts(target))
    except Exception:  # only a note: the rebuild itself is done
        return []
