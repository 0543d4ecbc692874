"""The server a restore writes into: found, judged safe to overwrite, emptied, loaded.

A restore replaces every user schema, so it refuses (exit 3) a server that is the
primary or holds data unless ``--overwrite`` says so; all of that is decided, and
every object downloaded and checked, before the first statement changes it. The
restored server is left read-only and replicating from nobody, its GTID position
the restored one: promoting or re-pointing it is a separate, deliberate step.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from drorch.config.secrets import read_secret
from drorch.engine.topology import observe
from drorch.errors import InvalidInput, OperationFailed, RefusedForSafety
from drorch.providers.estate import Estate
from drorch.providers.mysql.admin import admin_client
from drorch.providers.mysql.client import MySQLClient, ServerAddress
from drorch.replication.rebuild import client_programs, error_tail, ident, options_file, user_schemas

LOAD_CHUNK = 1 << 20


def resolve(estate: Estate, target: str) -> tuple[str | None, MySQLClient]:
    """``SITE`` (its server, as the admin account) or ``HOST:PORT`` (a server reached with the admin account)."""
    config = estate.config
    if target in config.sites:
        return target, admin_client(estate, target)
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise InvalidInput(f"--target {target}: name a site ({', '.join(sorted(config.sites))}) or HOST:PORT")
    topology = config.data.mysql
    if topology.admin_user is None or topology.admin_password is None:
        raise InvalidInput(f"--target {target}: a server outside the config is reached with data.mysql.admin_user; "
                           "set admin_user and admin_password")
    password = read_secret(config, topology.admin_password, "data.mysql.admin_password")
    like = next(iter(config.sites.values())).mysql
    address = ServerAddress(target, host, int(port), topology.admin_user, password, like.flavor,
                            like.connect_timeout_seconds, like.tls)
    return None, MySQLClient(address)


def holds_data(db: MySQLClient, ignore_schema: str) -> list[str]:
    """User tables (outside drorch's own heartbeat schema) that hold at least one row."""
    found = []
    for schema in user_schemas(db):
        if schema == ignore_schema:
            continue
        tables = db.query("SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND "
                          "TABLE_TYPE = 'BASE TABLE'", (schema,))
        for row in tables:
            name = f"{ident(schema)}.{ident(str(row['t']))}"
            if db.query(f"SELECT 1 AS x FROM {name} LIMIT 1"):
                found.append(f"{schema}.{row['t']}")
    return found


def refuse_unsafe(estate: Estate, site: str | None, db: MySQLClient, overwrite: bool) -> list[str]:
    """Refuse (exit 3) a primary, any site of the estate, a replica, a writable server or one with data unless
    ``overwrite``; returns why overwriting was needed."""
    if not db.ping():
        raise RefusedForSafety(f"the restore target {db.address.name} does not answer; nothing was changed")
    reasons = []
    state = db.state()
    if site is not None and observe(estate).primary == site:
        reasons.append(f"{site} is the primary")
    elif site is not None:
        reasons.append(f"{site} is a site of the estate (a standby would stop being one)")
    elif state.replica is not None:
        reasons.append(f"{db.address.name} replicates from {state.replica.source_host}:{state.replica.source_port}")
    elif not state.read_only:
        reasons.append(f"{db.address.name} is writable (a primary?)")
    schema = estate.config.data.heartbeat.table.split(".")[0]
    tables = holds_data(db, schema)
    if tables:
        shown = ", ".join(tables[:5]) + (f" and {len(tables) - 5} more" if len(tables) > 5 else "")
        reasons.append(f"{db.address.name} holds data ({shown})")
    if reasons and not overwrite:
        raise RefusedForSafety("; ".join(reasons) + ": a restore replaces everything on it. Add --overwrite to "
                               "do that anyway; nothing was changed")
    return reasons


def empty(db: MySQLClient) -> None:
    """Fence the server, detach it from any source, forget its binlog and drop every user schema (unlogged)."""
    flavor = db.flavor
    version = str(db.query("SELECT VERSION() AS v")[0]["v"])
    db.execute(*flavor.fence_sql(), *flavor.admin_writes_sql())
    if db.state().replica is not None:
        db.execute(flavor.stop_replica_sql(), flavor.reset_replica_sql())
    drops = [f"DROP DATABASE IF EXISTS {ident(name)}" for name in user_schemas(db)]
    db.execute(flavor.no_binlog_sql(), *drops)
    db.execute(*flavor.reset_binlog_sql(version))


def load(db: MySQLClient, chunks: Iterable[bytes], what: str, progress: Callable[[int, float], None] | None) -> int:
    """Feed SQL into the server's client program (unlogged); returns the bytes loaded."""
    program = client_programs(db.flavor)[1]
    with tempfile.TemporaryDirectory(prefix="drorch-restore-") as tmp:
        options = options_file(Path(tmp) / "target.cnf", db.address, db.flavor,
                               [f"init-command={db.flavor.no_binlog_sql()}"])
        with open(Path(tmp) / "load.err", "wb+") as errors:
            process = subprocess.Popen([program, f"--defaults-extra-file={options}"], stdin=subprocess.PIPE,
                                       stdout=subprocess.DEVNULL, stderr=errors)
            assert process.stdin is not None
            loaded, started, last = 0, time.monotonic(), 0.0
            try:
                for chunk in chunks:
                    process.stdin.write(chunk)
                    loaded += len(chunk)
                    if progress is not None and time.monotonic() - last >= 0.5:
                        last = time.monotonic()
                        progress(loaded, last - started)
                process.stdin.close()
            except BrokenPipeError:
                pass  # the client stopped reading: its exit code and error say why
            finally:
                process.wait()
            if process.returncode != 0:
                raise OperationFailed(f"loading {what} into {db.address.name} failed: {error_tail(errors)}. The "
                                      f"server holds a partial restore (read-only); run the restore again")
    return loaded


def replay(db: MySQLClient, files: list[Path], progress: Callable[[int, float], None] | None) -> int:
    """Replay binlog files through ``mariadb-binlog`` into the server; returns the SQL bytes applied."""
    if not files:
        return 0
    program = _which("mariadb-binlog")
    with tempfile.TemporaryDirectory(prefix="drorch-replay-") as tmp, \
            open(Path(tmp) / "binlog.err", "wb+") as errors:
        decoder = subprocess.Popen([program, *map(str, files)], stdout=subprocess.PIPE, stderr=errors,
                                   stdin=subprocess.DEVNULL)
        assert decoder.stdout is not None
        stdout = decoder.stdout
        try:
            return load(db, iter(lambda: os.read(stdout.fileno(), LOAD_CHUNK), b""), "the shipped binlogs",
                        progress)
        finally:
            decoder.wait()
            stdout.close()
            if decoder.returncode not in (0, None):
                raise OperationFailed(f"mariadb-binlog failed: {error_tail(errors)}")


def _which(name: str) -> str:
    import shutil

    found = shutil.which(name)
    if found is None:
        raise InvalidInput(f"'{name}' was not found on PATH: install mariadb-client")
    return found


def address_of(db: MySQLClient) -> str:
    return f"{db.address.host}:{db.address.port}"

