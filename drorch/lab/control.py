"""Access to a running lab from its directory: its state, config and clients."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from drorch.config import Config, load_config
from drorch.errors import InvalidInput
from drorch.lab.layout import MARKER, LabLayout
from drorch.lab.mariadb import admin_client
from drorch.lab.resolver import Answer, resolve
from drorch.lab.state import LabState
from drorch.providers.estate import Estate
from drorch.providers.mysql.client import MySQLClient


@dataclass(frozen=True)
class Lab:
    layout: LabLayout
    state: LabState

    @cached_property
    def config(self) -> Config:
        return load_config(self.layout.config)

    @cached_property
    def estate(self) -> Estate:
        return Estate(self.config)

    def admin(self, site: str) -> MySQLClient:
        s = self.state.sites[site]
        return admin_client(site, s.ip, s.mysql_port, self.layout.secret("admin").read_text().strip())


def open_lab(root: Path) -> Lab:
    layout = LabLayout(root.resolve())
    if not layout.marker.exists() or not layout.state.exists():
        raise InvalidInput(f"--dir {root}: no started drorch lab here (no {MARKER} or lab-state.json); "
                           f"run `drorch lab up --dir {root}` first")
    return Lab(layout, LabState.load(layout.state))


def resolve_now(root: Path) -> Answer:
    lab = open_lab(root)
    dns = lab.config.dns
    return resolve(lab.estate.route53, dns.zone_id, dns.record, dns.type)
