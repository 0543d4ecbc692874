"""The reversed estate (NHN primary, AWS standby): the example is a valid config, and on the lab drorch
fails such an estate over to AWS and back to NHN with the example's own failback playbook."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from drorch.config import load_config
from drorch.engine.actions import dns
from drorch.lab.control import Lab
from tests.helpers import drorch_cli, writable_sites

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "reversed-estate"


def test_the_example_is_a_valid_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRORCH_DB_PASSWORD", "not-used")
    monkeypatch.setenv("DRORCH_REPL_PASSWORD", "not-used")
    config = load_config(EXAMPLE / "drorch.yaml")
    assert config.primary_site == "nhn" and config.data.mysql.replicates_from["seoul"] == "nhn"


def reversed_lab_config(lab: Lab, directory: Path) -> Path:
    """The lab's own estate, described the reversed way: NHN home primary, everyone replicating from it."""
    document: dict[str, Any] = yaml.safe_load(lab.layout.config.read_text())
    for site in document["sites"]:
        document["sites"][site]["role"] = "primary" if site == "nhn" else "standby"
    document["data"]["mysql"]["replicates_from"] = {"seoul": "nhn", "tokyo": "nhn"}
    document["data"]["mysql"]["semi_sync"] = []
    document["playbooks"] = str(EXAMPLE / "playbooks")
    root = lab.layout.root
    for site in document["sites"].values():  # relative paths in the lab's config are relative to the lab
        if "credentials_file" in site["provider"]:
            site["provider"]["credentials_file"] = str(root / site["provider"]["credentials_file"])
        if "clouds_file" in site["provider"]:
            site["provider"]["clouds_file"] = str(root / site["provider"]["clouds_file"])
        site["mysql"]["password"]["file"] = str(root / site["mysql"]["password"]["file"])
    document["dns"]["provider"]["credentials_file"] = str(root / document["dns"]["provider"]["credentials_file"])
    for secret in ("replication_password", "admin_password"):
        ref = document["data"]["mysql"][secret]
        ref["file"] = str(root / ref["file"])
    document["state"]["path"] = str(directory / "state.db")
    path = directory / "drorch.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_reversed_estate_fails_over_to_aws_and_back_to_nhn(home: Lab, tmp_path: Path) -> None:
    at_nhn = drorch_cli(home.layout.config, "failover", "--to", "nhn", "--yes")  # now run as the reversed estate
    assert at_nhn.returncode == 0, at_nhn.stderr
    reversed_config = reversed_lab_config(home, tmp_path)
    to_aws = drorch_cli(reversed_config, "failover", "--to", "tokyo", "--yes", "--output", "json")
    assert to_aws.returncode == 0, to_aws.stderr
    document = json.loads(to_aws.stdout)
    assert (document["from"], document["to"], document["kind"]) == ("nhn", "tokyo", "switchover")
    assert document["playbook"] == "failover-to-tokyo" and document["lost_transactions"] == 0
    assert writable_sites(home) == ["tokyo"] and dns.active_sites(home.estate)["PRIMARY"] == "tokyo"
    back = drorch_cli(reversed_config, "failback", "--yes", "--output", "json")
    assert back.returncode == 0, back.stderr
    document = json.loads(back.stdout)
    assert document["playbook"] == "failback-to-nhn" and document["to"] == "nhn"  # the example's own playbook
    assert writable_sites(home) == ["nhn"] and dns.active_sites(home.estate)["PRIMARY"] == "nhn"
