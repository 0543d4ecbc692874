"""Where an isolated drill promotes its copy of a standby's replica: SRM's "bubble".

On the lab drorch starts its own throw-away MariaDB and demo app at the standby's
address (``drorch.lab.scratch``). On an estate the config names a scratch server
drorch may overwrite and an app instance on it (``isolated.scratch``), with
optional commands that bring them up and down. That server is checked at run time
never to be one of the estate's own databases (a replica, or the same server
under another name) before anything is copied into it; afterwards the copied
schemas are dropped and it is made read-only again, because the copy is
production data.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import requests

from drorch.config.drill_schema import Isolated
from drorch.drill.commands import Command
from drorch.drill.harness import lab_of
from drorch.errors import InvalidInput, OperationFailed, RefusedForSafety
from drorch.providers.estate import Estate, mysql_client
from drorch.providers.mysql.client import MySQLClient
from drorch.replication.rebuild import ident


@dataclass(frozen=True)
class Scratch:
    db: MySQLClient
    app_url: str


class Bubble(Protocol):
    def start(self, site: str) -> Scratch: ...

    def smoke(self, scratch: Scratch) -> dict[str, Any]: ...

    def stop(self, site: str, scratch: Scratch | None, copied: list[str]) -> dict[str, Any]: ...


def bubble_for(estate: Estate, site: str, drill_dir: Path) -> Bubble:
    """The configured scratch place for ``site``, else the lab's; InvalidInput (nothing changed) when neither."""
    config = estate.config
    scratch = config.isolated.scratch.get(site) if config.isolated is not None else None
    if scratch is not None and config.isolated is not None:
        bubble = ConfiguredBubble(estate, site, config.isolated, drill_dir)
        bubble.check()
        return bubble
    try:
        return LabBubble(lab_of(estate))
    except InvalidInput:
        raise InvalidInput(f"{config.source_path or 'the config'}: isolated.scratch.{site}: an isolated drill "
                           "promotes a copy of the replica on a scratch server, and this config is not the lab's; "
                           f"add `isolated: {{scratch: {{{site}: {{mysql: ..., app_url: ...}}}}}}` (README: Drills "
                           "on a real estate)") from None


def _write_and_read_back(app_url: str, db: MySQLClient) -> dict[str, Any]:
    """The demo app's smoke check: healthy and writable, one order written and found in the copy."""
    health = requests.get(f"{app_url}/healthz", timeout=5)
    if health.status_code != 200 or not health.json().get("writable"):
        raise OperationFailed(f"smoke check: {app_url}/healthz answered {health.status_code} {health.text}")
    ref = f"isolated-drill-{int(time.time() * 1000)}"
    written = requests.post(f"{app_url}/orders", json={"client_ref": ref}, timeout=5)
    if written.status_code != 201:
        raise OperationFailed(f"smoke check: a write answered {written.status_code} {written.text}")
    rows = db.query("SELECT COUNT(*) AS n FROM shop.orders WHERE client_ref = %s", (ref,))
    if int(rows[0]["n"]) != 1:
        raise OperationFailed("smoke check: the acknowledged write is not in the copy")
    return {"health": health.json(), "write": written.json()}


class LabBubble:
    """The lab's own scratch MariaDB and demo app, deleted afterwards."""

    def __init__(self, lab: Any) -> None:
        self.lab = lab

    def start(self, site: str) -> Scratch:
        from drorch.lab import scratch

        found = scratch.start(self.lab, site)
        return Scratch(found.db, found.app_url)

    def smoke(self, scratch: Scratch) -> dict[str, Any]:
        return _write_and_read_back(scratch.app_url, scratch.db)

    def stop(self, site: str, scratch: Scratch | None, copied: list[str]) -> dict[str, Any]:
        from drorch.lab import scratch as lab_scratch

        return {"stopped": lab_scratch.stop(self.lab, site)}


class ConfiguredBubble:
    """The estate's scratch server and app for one standby (``isolated.scratch.SITE``)."""

    def __init__(self, estate: Estate, site: str, isolated: Isolated, drill_dir: Path) -> None:
        source = estate.config.source_path
        cwd = source.parent if source is not None else Path.cwd()
        output = drill_dir / f"isolated-{int(time.time())}.out"
        self.estate, self.site, self.source = estate, site, source
        self.place, self.timeout = isolated.scratch[site], isolated.timeout_seconds
        field = f"isolated.scratch.{site}"
        self._commands = {name: Command(f"{field}.{name}", tuple(argv), cwd, output)
                          for name, argv in (("start", self.place.start), ("stop", self.place.stop),
                                             ("smoke", self.place.smoke)) if argv is not None}

    def check(self) -> None:
        for command in self._commands.values():
            command.check(self.source)

    def start(self, site: str) -> Scratch:
        if "start" in self._commands:
            self._commands["start"].filled(site=site).run(self.timeout)
        db = mysql_client(self.estate.config, f"scratch-{site}", self.place.mysql,
                          f"isolated.scratch.{site}.mysql.password")
        if db.wait_answering(self.timeout) is None:
            raise OperationFailed(f"the scratch server of {site} ({db.address.host}:{db.address.port}) does "
                                  f"not answer after {self.timeout:g} s")
        self._refuse_estate_database(db)
        return Scratch(db, self.place.app_url.rstrip("/"))

    def _refuse_estate_database(self, db: MySQLClient) -> None:
        """Never overwrite a server that replicates, or that is one of the sites' databases under another name."""
        state = db.state()
        where = f"isolated.scratch.{self.site}.mysql ({db.address.host}:{db.address.port})"
        if state.replica is not None:
            raise RefusedForSafety(f"{where} replicates from {state.replica.source_host}:{state.replica.source_port}:"
                                   " it is not a throw-away server; nothing was copied into it")
        for name in self.estate.config.sites:
            site_db = self.estate.mysql(name)
            if site_db.ping() and site_db.state().origin == state.origin:
                raise RefusedForSafety(f"{where} is {name}'s database (same server id {state.origin}); nothing was "
                                       "copied into it: point it at a throw-away server")

    def smoke(self, scratch: Scratch) -> dict[str, Any]:
        path = self.estate.config.site(self.site).app.health_path
        health = requests.get(f"{scratch.app_url}{path}", timeout=5)
        if health.status_code != 200:
            raise OperationFailed(f"smoke check: {scratch.app_url}{path} answered {health.status_code}")
        done: dict[str, Any] = {"health": health.status_code}
        if "smoke" in self._commands:
            self._commands["smoke"].filled(app_url=scratch.app_url).run(self.timeout)
            done["smoke"] = self._commands["smoke"].program
        return done

    def stop(self, site: str, scratch: Scratch | None, copied: list[str]) -> dict[str, Any]:
        done: dict[str, Any] = {}
        if scratch is not None and scratch.db.ping():
            scratch.db.execute(*[f"DROP DATABASE IF EXISTS {ident(name)}" for name in copied],
                               *scratch.db.flavor.fence_sql())
            done["dropped"] = copied
        if "stop" in self._commands:
            self._commands["stop"].filled(site=site).run(self.timeout)
            done["stopped"] = self._commands["stop"].program
        return done
