"""A private corner of the lab's backup bucket per test, and the lab as it was afterwards.

Each test gets a config beside the lab's own (relative paths still resolve) whose
``backups.store.prefix`` is its own, so tests sharing a lab never see each other's
backups; everything under it is deleted at the end, the config file removed and any
scratch server stopped.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from drorch.backup.store import Store
from drorch.config import load_config
from drorch.config.schema import Config
from drorch.lab import scratch
from drorch.lab.control import Lab
from drorch.providers.estate import Estate
from tests.helpers import restore_home


@dataclass
class Corner:
    lab: Lab
    path: Path  # the derived drorch.yaml
    config: Config
    estate: Estate
    store: Store
    table: str  # a table of the test's own in the shop schema (created by `make_table`)

    def make_table(self) -> None:
        self.lab.admin("seoul").execute(f"CREATE TABLE shop.{self.table} (id INT AUTO_INCREMENT PRIMARY KEY, "
                                        "ref VARCHAR(64) NOT NULL, at DOUBLE NOT NULL)")

    def write(self, ref: str) -> float:
        """One committed row on the primary; returns when it was written."""
        now = time.time()
        self.lab.admin("seoul").execute((f"INSERT INTO shop.{self.table} (ref, at) VALUES (%s, %s)", (ref, now)))
        return now

    def refs(self, db: object) -> list[str]:
        from drorch.providers.mysql.client import MySQLClient

        assert isinstance(db, MySQLClient)
        return [str(r["ref"]) for r in db.query(f"SELECT ref FROM shop.{self.table} ORDER BY id")]


@pytest.fixture()
def corner(home: Lab) -> Iterator[Corner]:
    tag = secrets.token_hex(3)
    document = yaml.safe_load(home.layout.config.read_text())
    document["backups"]["store"]["prefix"] = f"test-{tag}"
    path = home.layout.root / f"drorch-backup-{tag}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    config = load_config(path)
    found = Corner(home, path, config, Estate(config), Store(config), f"pitr_{tag}")
    try:
        yield found
    finally:
        for site in home.state.sites:
            scratch.stop(home, site)
        objects, _ = found.store.listing("")
        found.store.delete([o.key for o in objects])
        restore_home(home)  # seoul primary again before the table goes (a write on a replica would be errant)
        home.admin("seoul").execute(f"DROP TABLE IF EXISTS shop.{found.table}")
        path.unlink(missing_ok=True)
