"""What a running lab is made of: ports, addresses and ids, saved as ``lab-state.json``.

Chaos, load and status read this instead of guessing, and ``lab up`` uses it to
recognise a lab that already runs.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class SiteState:
    ip: str
    app_port: int
    mysql_port: int


@dataclass(frozen=True)
class LabState:
    sites: dict[str, SiteState]
    aws_port: int
    openstack_port: int
    aws_ready: dict[str, Any]
    metrics_port: int
    commands: dict[str, list[str]] = field(default_factory=dict)
    # ``lab up --vpn`` only: process name -> network namespace it runs in, and the VPN's directory
    netns: dict[str, str] = field(default_factory=dict)
    vpn_dir: str | None = None

    @property
    def has_vpn(self) -> bool:
        return self.vpn_dir is not None

    @property
    def aws_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.aws_port}"

    @property
    def openstack_auth_url(self) -> str:
        return f"http://127.0.0.1:{self.openstack_port}/v3"

    def app_url(self, site: str) -> str:
        s = self.sites[site]
        return f"http://{s.ip}:{s.app_port}"

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        data = asdict(self)
        if not self.has_vpn:  # a lab without the VPN writes the same file as before the VPN existed
            del data["netns"], data["vpn_dir"]
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> LabState:
        data = json.loads(path.read_text())
        sites = {name: SiteState(**value) for name, value in data.pop("sites").items()}
        return cls(sites=sites, **data)
