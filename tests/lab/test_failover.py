"""The first failover on the real lab: order, safety, and measured outcome."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from drorch.config import load_config
from drorch.engine.actions import dns
from drorch.engine.failover import failover
from drorch.errors import InvalidInput, RefusedForSafety
from drorch.lab import chaos
from drorch.lab import load as lab_load
from drorch.lab.control import Lab
from drorch.providers.estate import Estate
from tests.helpers import wait_for, writable_sites


def _replica_source_port(lab: Lab, site: str) -> int | None:
    replica = lab.admin(site).state().replica
    return replica.source_port if replica and replica.io_running and replica.sql_running else None


def test_switchover_under_load_loses_no_acknowledged_write(home: Lab, tmp_path: Path) -> None:
    log = tmp_path / "load.jsonl"
    loader = threading.Thread(target=lab_load.run, args=(home, lab_load.LoadSpec(25.0, 7.0, log)))
    loader.start()
    wait_for(lambda: log.exists() and log.stat().st_size > 0, timeout=10)
    result = failover(home.estate, "tokyo")
    loader.join(timeout=30)
    assert not loader.is_alive()

    assert result.status == "succeeded" and result.kind == "switchover", (
        result.error, [(s.name, s.status, s.error) for s in result.steps])
    assert (result.from_site, result.to_site) == ("seoul", "tokyo")
    assert result.rpo_seconds == 0.0 and result.lost_transactions == 0
    assert result.rto_seconds is not None and result.rto_seconds > 0
    names = [s.name for s in result.steps]
    assert names.index("fence the current primary") < names.index("promote tokyo") < names.index(
        "point DNS at tokyo")
    assert result.playbook == "failover-to-tokyo"  # the team's playbook for this exact move
    assert writable_sites(home) == ["tokyo"]
    assert dns.active_sites(home.estate)["PRIMARY"] == "tokyo"
    tokyo_port = home.state.sites["tokyo"].mysql_port
    assert wait_for(lambda: _replica_source_port(home, "nhn")) == tokyo_port
    assert wait_for(lambda: _replica_source_port(home, "seoul")) == tokyo_port
    truth = lab_load.verify(home, log)
    assert truth.lost_refs == ()
    assert truth.sites.get("tokyo", 0) > 0 and truth.sites.get("seoul", 0) > 0


def test_unplanned_failover_after_seoul_dies(home: Lab) -> None:
    chaos.kill_db(home, "seoul")
    chaos.stop_app(home, "seoul")
    wait_for(lambda: _replica_source_port(home, "tokyo") is None, timeout=20)  # replicas notice the loss
    result = failover(home.estate, "tokyo")
    assert result.status == "succeeded" and result.kind == "failover"
    assert result.rpo_seconds is None and any("RPO not known yet" in n for n in result.notes)
    assert [s.status for s in result.steps if s.name == "fence the current primary"] == ["skipped"]
    assert writable_sites(home) == ["tokyo"]
    assert wait_for(lambda: _replica_source_port(home, "nhn")) == home.state.sites["tokyo"].mysql_port
    chaos.start_db(home, "seoul")  # the old primary comes back read-only: never two writable primaries
    assert writable_sites(home) == ["tokyo"]


def test_refuses_when_the_target_database_is_down(home: Lab) -> None:
    chaos.kill_db(home, "tokyo")
    with pytest.raises(RefusedForSafety, match="tokyo"):
        failover(home.estate, "tokyo")
    assert writable_sites(home) == ["seoul"]
    assert dns.active_sites(home.estate)["PRIMARY"] == "seoul"


def test_refuses_to_promote_when_only_the_controller_lost_the_primary(home: Lab, tmp_path: Path) -> None:
    """A partition: drorch cannot reach seoul, but tokyo still replicates from it."""
    document = yaml.safe_load(home.layout.config.read_text())
    document["sites"]["seoul"]["mysql"]["host"] = "127.10.0.99"  # unreachable from the controller only
    for ref in ("secrets/drorch.password", "secrets/repl.password", "secrets/admin.password"):
        (tmp_path / ref).parent.mkdir(exist_ok=True)
        (tmp_path / ref).write_text((home.layout.root / ref).read_text())
    document["sites"]["seoul"]["provider"]["credentials_file"] = str(home.layout.aws_credentials)
    document["dns"]["provider"]["credentials_file"] = str(home.layout.aws_credentials)
    document["sites"]["nhn"]["provider"]["clouds_file"] = str(home.layout.root / "clouds.yaml")
    for site in ("tokyo", "nhn"):
        document["sites"][site]["mysql"]["host"] = home.state.sites[site].ip
        if document["sites"][site]["provider"]["kind"] == "aws":
            document["sites"][site]["provider"]["credentials_file"] = str(home.layout.aws_credentials)
    partitioned = tmp_path / "drorch.yaml"
    partitioned.write_text(yaml.safe_dump(document))
    with pytest.raises(RefusedForSafety, match="partition"):
        failover(Estate(load_config(partitioned)), "tokyo")
    assert writable_sites(home) == ["seoul"]


def test_failover_to_the_current_primary_changes_nothing(home: Lab) -> None:
    result = failover(home.estate, "seoul")
    assert result.status == "succeeded" and result.kind == "already-primary" and result.playbook == "failover"
    statuses = {s.name: s.status for s in result.steps}
    assert statuses["fence the current primary"] == "skipped" and statuses["promote the target"] == "succeeded"
    assert writable_sites(home) == ["seoul"] and dns.active_sites(home.estate)["PRIMARY"] == "seoul"
    seoul_port = home.state.sites["seoul"].mysql_port
    assert [_replica_source_port(home, s) for s in ("tokyo", "nhn")] == [seoul_port, seoul_port]


def test_unknown_site_is_invalid_input(home: Lab) -> None:
    with pytest.raises(InvalidInput, match="unknown site 'mars'"):
        failover(home.estate, "mars")


def _drorch(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DRORCH_CONFIG": str(config)}
    return subprocess.run([sys.executable, "-m", "drorch.cli", *args], capture_output=True, text=True, env=env,
                          stdin=subprocess.DEVNULL, timeout=120, check=False)


def test_cli_contract_exit_codes_and_json(home: Lab) -> None:
    bad = _drorch("failover", "--to", "mars", "--yes", "--output", "json", config=home.layout.config)
    assert bad.returncode == 2 and "unknown site 'mars'" in json.loads(bad.stdout)["error"]
    unconfirmed = _drorch("failover", "--to", "tokyo", config=home.layout.config)
    assert unconfirmed.returncode == 2 and "--yes" in unconfirmed.stderr
    assert writable_sites(home) == ["seoul"]
    done = _drorch("failover", "--to", "tokyo", "--yes", "--output", "json", config=home.layout.config)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert {"run_id", "status", "from", "to", "rto_seconds", "rpo_seconds", "steps"} <= set(document)
    assert document["status"] == "succeeded" and document["to"] == "tokyo"
    assert all({"name", "status", "duration_seconds"} <= set(step) for step in document["steps"])


def test_failover_cli_journals_every_step(home: Lab) -> None:
    done = _drorch("failover", "--to", "tokyo", "--yes", "--output", "json", config=home.layout.config)
    assert done.returncode == 0, done.stderr
    run_id = json.loads(done.stdout)["run_id"]
    shown = _drorch("runs", "show", run_id, "--output", "json", config=home.layout.config)
    assert shown.returncode == 0, shown.stderr
    record = json.loads(shown.stdout)
    assert record["status"] == "succeeded" and record["summary"]["to"] == "tokyo"
    statuses = {s["name"]: s["status"] for s in record["steps"]}
    assert set(statuses.values()) == {"succeeded", "skipped"} and statuses["fence the current primary"] == "succeeded"
    assert statuses["wait until tokyo applied everything it received"] == "skipped"  # the unplanned path
    # parallel members are journaled as they start and listed as they end: the same steps, maybe reordered
    assert sorted(s["name"] for s in record["steps"]) == sorted(s["name"] for s in json.loads(done.stdout)["steps"])
    listed = _drorch("runs", "list", "--output", "json", config=home.layout.config)
    assert run_id in [r["run_id"] for r in json.loads(listed.stdout)["runs"]]
    for secret in home.layout.secrets.iterdir():
        assert secret.read_text().strip() not in shown.stdout
