"""Throw-away copies for isolated drills: a scratch MariaDB and an app on it, at a standby's address.

SRM's test recovery brings the recovered machines up in a bubble; the lab's bubble is a
MariaDB started from the lab's template datadir on a free port of the standby's own
address, with a copy of the standby's replica loaded into it, and an instance of the
demo app pointed at that copy. Both are tracked like every lab process, so
`drorch lab down` stops them even if the drill that started them was killed.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass

from drorch.errors import OperationFailed
from drorch.lab import mariadb, processes
from drorch.lab.control import Lab
from drorch.lab.ports import free_port, wait_listening
from drorch.providers.mysql.client import MySQLClient

SCRATCH_SERVER_ID = 90  # never one of the sites' ids: its binlog must not look like theirs
START_TIMEOUT = 30.0


@dataclass(frozen=True)
class Scratch:
    name: str
    db: MySQLClient  # the lab's admin account on the scratch server
    app_url: str


def _template(lab: Lab) -> str:
    template = lab.layout.root / "mariadb" / "template"
    if not template.is_dir():
        raise OperationFailed(f"the lab's template datadir {template} is missing: run `drorch lab up` again")
    return str(template)


def start(lab: Lab, site: str) -> Scratch:
    """A scratch MariaDB (empty schemas, the lab's accounts) and an app on it, both at ``site``'s address.

    One left by a drill that was killed is stopped first: there is one scratch place per site.
    """
    stop(lab, site)
    name = f"scratch-{site}"
    host = lab.state.sites[site].ip
    db_port = free_port(host)
    app_port = free_port(host)
    while app_port == db_port:
        app_port = free_port(host)
    base = lab.layout.mariadb_dir(name)
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    shutil.copytree(_template(lab), base / "data")
    server = processes.start(lab.layout.run, lab.layout.logs, name,
                             mariadb.server_argv(lab.layout, name, host, db_port, SCRATCH_SERVER_ID))
    db = mariadb.admin_client(name, host, db_port, lab.layout.secret("admin").read_text().strip())
    mariadb.wait_ready(db, server, START_TIMEOUT)
    app = processes.start(lab.layout.run, lab.layout.logs, f"{name}-app", [
        sys.executable, "-m", "drorch.lab.app", "--site", name, "--host", host, "--port", str(app_port),
        "--db-host", host, "--db-port", str(db_port), "--db-password-file", str(lab.layout.secret("app"))])
    if not wait_listening(host, app_port, START_TIMEOUT, lambda: processes.is_alive(app)):
        stop(lab, site)
        raise OperationFailed(f"the scratch app did not start; see {lab.layout.logs / (name + '-app.log')}")
    return Scratch(name, db, f"http://{host}:{app_port}")


def stop(lab: Lab, site: str) -> list[str]:
    """Stop the scratch app and server of ``site`` and delete the copy; returns what was stopped (idempotent)."""
    name = f"scratch-{site}"
    stopped = []
    for process in (f"{name}-app", name):
        found = processes.read(lab.layout.run, process)
        if found is not None:
            processes.stop(lab.layout.run, found)
            stopped.append(process)
    shutil.rmtree(lab.layout.mariadb_dir(name), ignore_errors=True)
    return stopped
