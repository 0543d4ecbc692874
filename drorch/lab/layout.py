"""Where everything of one lab lives inside its directory, and the fixed shape of the estate."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MARKER = ".drorch-lab"

SITES = ("seoul", "tokyo", "nhn")
SITE_HOSTS = {"seoul": 1, "tokyo": 2, "nhn": 3}  # last octet inside the lab's own 127.X.Y.0/24
SITE_REGIONS = {"seoul": "ap-northeast-2", "tokyo": "ap-northeast-1", "nhn": None}
SERVER_IDS = {"seoul": 1, "tokyo": 2, "nhn": 3}
HOME_PRIMARY = "seoul"
SEMI_SYNC_REPLICA = "tokyo"
ZONE = "lab.drorch.example."
RECORD = "app.lab.drorch.example."


@dataclass(frozen=True)
class LabLayout:
    root: Path

    @property
    def marker(self) -> Path:
        return self.root / MARKER

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def secrets(self) -> Path:
        return self.root / "secrets"

    @property
    def manifest(self) -> Path:
        return self.root / "lab.json"

    @property
    def config(self) -> Path:
        return self.root / "drorch.yaml"

    @property
    def state(self) -> Path:
        return self.root / "lab-state.json"

    @property
    def aws_dir(self) -> Path:
        return self.root / "aws"

    @property
    def vpn_dir(self) -> Path:
        """The ``--vpn`` lab's strongSwan VPN (drorch.lab.vpn), NHN site behind it."""
        return self.root / "vpn"

    @property
    def clouds_file(self) -> Path:
        return self.root / "clouds.yaml"

    @property
    def aws_credentials(self) -> Path:
        return self.root / "aws-credentials"

    def mariadb_dir(self, site: str) -> Path:
        return self.root / "mariadb" / site

    def secret(self, name: str) -> Path:
        return self.secrets / f"{name}.password"
