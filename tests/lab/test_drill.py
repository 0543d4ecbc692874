"""`drorch drill`: a switchover there and back under load, judged on ground truth, reported, exported."""

from __future__ import annotations

import json
import re
import xml.dom.minidom
from pathlib import Path

import yaml

from drorch.config import load_config
from drorch.config.schema import EcsCompute
from drorch.engine.actions import dns
from drorch.lab.control import Lab
from drorch.metrics import registry
from drorch.providers.aws import ecs
from drorch.state.backends import open_journal
from tests.helpers import drorch_cli, writable_sites


def test_switchover_drill_measures_ground_truth_and_leaves_the_estate_as_it_was(home: Lab) -> None:
    tokyo = home.config.site("tokyo").compute
    assert isinstance(tokyo, EcsCompute)
    done = drorch_cli(home.layout.config, "drill", "--to", "tokyo", "--load", "20", "--yes", "--output", "json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    measured = result["measured"]
    assert result["status"] == "succeeded" and result["missed"] == []
    assert measured["lost_acknowledged_writes"] == 0 and measured["acknowledged_writes"] > 20
    assert 0 <= measured["client_outage_seconds"] < home.config.objectives.rto_seconds
    assert result["objectives"]["rpo"]["measured_seconds"] == 0.0  # GTID-proven and no client write lost
    # as it started: seoul primary, DNS on seoul, tokyo replicating and back at its warm size (cost)
    assert writable_sites(home) == ["seoul"] and dns.active_sites(home.estate)["PRIMARY"] == "seoul"
    capacity = ecs.capacity(home.estate.aws("tokyo", "ecs"), tokyo.cluster, tokyo.service)
    assert capacity.desired == tokyo.warm_count
    journal = open_journal(home.config)
    report = drorch_cli(home.layout.config, "report", result["run_id"])
    assert report.returncode == 0 and "| RTO |" in report.stdout and "fail back to seoul" in report.stdout
    html = drorch_cli(home.layout.config, "report", result["run_id"], "--format", "html")
    assert html.returncode == 0 and html.stdout.startswith("<!doctype html>")
    svg = re.search(r"<svg.*?</svg>", html.stdout, re.S)
    assert svg is not None
    xml.dom.minidom.parseString(svg.group(0))  # well-formed SVG
    # the drill's steps and its failover's steps (fence, promote, DNS) are all on the timeline
    for step in ("start the client load", "fence the current primary", "promote tokyo", "point DNS at tokyo",
                 "stop the load and check every acknowledged write"):
        assert f"<title>{step}" in svg.group(0) or f"<title>  {step}" in svg.group(0), step
    # the reports were also written to the state directory, for the drill and for both moves, owner-only
    written = home.layout.root / "state" / "reports"
    for run_id in (result["run_id"], result["failover_run"], result["failback_run"]):
        assert sorted(p.name for p in written.glob(f"{run_id}.*")) == [f"{run_id}.{s}" for s in ("html", "json", "md")]
        assert all((written / f"{run_id}.{s}").stat().st_mode & 0o077 == 0 for s in ("html", "json", "md"))
    assert (written / f"{result['run_id']}.md").read_text().strip() == report.stdout.strip()
    metrics = registry.create(home.config)
    registry.update_runs(metrics, journal.runs(50))
    labels = {"drill": "switchover-tokyo", "mode": "switchover", "to": "tokyo"}
    for objective in ("rto", "rpo"):
        assert metrics.registry.get_sample_value("drorch_drill_objective_met", {**labels, "objective": objective}) == 1
    assert (metrics.registry.get_sample_value("drorch_drill_last_success_timestamp", labels) or 0) > 0
    assert metrics.registry.get_sample_value("drorch_drill_rto_seconds", labels) == result["objectives"]["rto"][
        "measured_seconds"]


def test_a_drill_that_misses_its_objective_exits_1_and_says_which(home: Lab, tmp_path: Path) -> None:
    document = yaml.safe_load(home.layout.config.read_text())
    document["objectives"]["rto_seconds"] = 0.001  # nothing fails over in a millisecond
    strict = home.layout.root / "drorch-strict.yaml"
    strict.write_text(yaml.safe_dump(document))
    missed = drorch_cli(strict, "drill", "--to", "tokyo", "--load", "10", "--yes", "--output", "json")
    assert missed.returncode == 1, missed.stderr
    result = json.loads(missed.stdout)
    assert result["status"] == "missed" and result["missed"] == ["rto"]
    assert writable_sites(home) == ["seoul"]  # it still came back
    assert load_config(strict).objectives.rto_seconds == 0.001


def test_drill_bad_input_changes_nothing(home: Lab) -> None:
    home_drill = drorch_cli(home.layout.config, "drill", "--to", "seoul", "--yes")
    assert home_drill.returncode == 2 and "home primary" in home_drill.stderr
    assert drorch_cli(home.layout.config, "drill", "--to", "osaka", "--yes").returncode == 2
    unknown_mode = drorch_cli(home.layout.config, "drill", "--to", "tokyo", "--mode", "earthquake", "--yes")
    assert unknown_mode.returncode == 2 and "choose switchover, chaos, isolated or restore" in unknown_mode.stderr
    assert drorch_cli(home.layout.config, "report", "no-such-run").returncode == 2
    assert writable_sites(home) == ["seoul"]
