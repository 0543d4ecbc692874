"""Drills on a real estate: no lab.json beside the config, so drorch uses only what the config names.

Its own client and verifier (``ground_truth``), its fault as a hook command or an AWS FIS
experiment (``chaos``), its scratch server (``isolated``). On the lab those are the lab's own
commands, a FIS template the lab's AWS server carries out, and a scratch server the test starts.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from drorch.config import load_config
from drorch.config.drill_schema import Isolated, ScratchSite
from drorch.drill.bubble import ConfiguredBubble
from drorch.engine.actions import dns
from drorch.errors import RefusedForSafety
from drorch.lab import processes, scratch
from drorch.lab.control import Lab
from drorch.lab.estate_copy import estate_config, lab_command, lab_ground_truth
from drorch.providers.estate import Estate
from drorch.state.backends import open_journal
from tests.helpers import drorch_cli, estate_state, writable_sites

SMOKE = '''import sys, requests
written = requests.post(sys.argv[1] + "/orders", json={"client_ref": "smoke-" + sys.argv[2]}, timeout=5)
sys.exit(0 if written.status_code == 201 else 1)
'''


def private_state(tmp_path: Path) -> dict[str, Any]:
    """A journal of the test's own: a drill that fails on purpose must not reach the lab's drill metrics
    (they alert on a failed drill, and other tests on this lab check that nothing alerts)."""
    return {"backend": "sqlite", "path": str(tmp_path / "state" / "drorch.db")}


def step_output(config: Path, run_id: str, name: str) -> dict[str, Any]:
    record = open_journal(load_config(config)).run(run_id)
    assert record is not None
    found = next(step for step in record.steps if step.name == name)
    return dict(found.detail)


def test_a_switchover_drill_uses_the_estates_own_client(home: Lab, tmp_path: Path) -> None:
    config = estate_config(home, tmp_path / "estate", ground_truth=lab_ground_truth(home))
    done = drorch_cli(config, "drill", "--to", "tokyo", "--load", "20", "--yes", "--output", "json")
    assert done.returncode in (0, 1), done.stderr  # 1: an objective missed, said in the result
    result = json.loads(done.stdout)
    measured = result["measured"]
    assert measured["acknowledged_writes"] > 40 and measured["lost_acknowledged_writes"] == 0, measured
    assert measured["client_outage_seconds"] < home.config.objectives.rto_seconds
    started = step_output(config, result["run_id"], "start the client load")
    assert started["program"] == Path(sys.executable).name
    assert not processes.is_alive(processes.Tracked("load", int(started["pid"]), ()))  # stopped by its PID
    log = Path(started["log"])
    assert log.parent == tmp_path / "estate" / "drills"  # the estate's folder: nothing written into the lab's
    assert writable_sites(home) == ["seoul"] and dns.active_sites(home.estate)["PRIMARY"] == "seoul"


def test_a_chaos_drill_injects_the_fault_through_an_fis_experiment(home: Lab, tmp_path: Path) -> None:
    template = json.loads(home.layout.manifest.read_text())["fis_templates"]["seoul"]
    config = estate_config(home, tmp_path / "estate", ground_truth=lab_ground_truth(home), chaos={
        "fault": {"fis": {"experiment_template_id": template}}, "heal": lab_command(home, "chaos", "heal")})
    done = drorch_cli(config, "drill", "--to", "tokyo", "--mode", "chaos", "--load", "20", "--yes",
                      "--output", "json")
    assert done.returncode in (0, 1), done.stderr
    result = json.loads(done.stdout)
    assert result["measured"]["lost_acknowledged_writes"] == 0 and result["measured"]["detection_seconds"] > 0
    injected = step_output(config, result["run_id"], "inject the fault into seoul")
    fis = home.estate.aws("seoul", "fis")
    experiment = fis.get_experiment(id=injected["fis_experiment"])["experiment"]
    assert experiment["experimentTemplateId"] == template and experiment["state"]["status"] == "completed"
    there = open_journal(home.config).run(result["failover_run"])
    assert there is not None and there.summary["trigger"] == "chaos-drill"  # the fault was real: drorch acted
    healed = step_output(config, result["run_id"], "heal seoul")
    assert healed["heal"] == Path(sys.executable).name and healed["database_answers_after_seconds"] >= 0
    assert writable_sites(home) == ["seoul"] and dns.active_sites(home.estate)["PRIMARY"] == "seoul"


def test_a_fault_hook_that_fails_stops_the_drill_with_nothing_moved(home: Lab, tmp_path: Path) -> None:
    config = estate_config(home, tmp_path / "estate", ground_truth=lab_ground_truth(home),
                           chaos={"fault": {"command": ["false", "{site}"]}}, state=private_state(tmp_path))
    before = estate_state(home)
    done = drorch_cli(config, "drill", "--to", "tokyo", "--mode", "chaos", "--load", "10", "--yes")
    assert done.returncode == 1 and "chaos.fault.command (false) exited 1" in done.stderr, done.stderr
    after = estate_state(home)  # the client wrote orders meanwhile: roles and sources are compared, not data
    assert {site: role[:2] for site, role in after["roles"].items()} == {
        site: role[:2] for site, role in before["roles"].items()}
    assert after["dns"] == before["dns"] and after["ecs_desired"] == before["ecs_desired"]


def test_an_fis_action_the_lab_cannot_carry_out_fails_the_experiment_and_breaks_nothing(home: Lab) -> None:
    fis = home.estate.aws("seoul", "fis")
    made = fis.create_experiment_template(
        clientToken="test-unsupported", description="reboot", roleArn="arn:aws:iam::123456789012:role/fis",
        stopConditions=[{"source": "none"}], targets={},
        actions={"reboot": {"actionId": "aws:ec2:reboot-instances", "parameters": {}}},
        tags={"drorch-lab-site": "seoul"})
    started = fis.start_experiment(experimentTemplateId=made["experimentTemplate"]["id"], clientToken="x1")
    assert fis.get_experiment(id=started["experiment"]["id"])["experiment"]["state"]["status"] == "failed"
    assert writable_sites(home) == ["seoul"]  # seoul's database was not killed


def test_an_isolated_drill_promotes_the_copy_on_the_estates_scratch_server(home: Lab, tmp_path: Path) -> None:
    place = scratch.start(home, "tokyo")  # stands in for a scratch server the estate keeps for drills
    try:
        smoke = tmp_path / "smoke.py"
        smoke.write_text(SMOKE)
        address = place.db.address
        config = estate_config(home, tmp_path / "estate", isolated={"scratch": {"tokyo": {
            "mysql": {"host": address.host, "port": address.port, "user": address.user,
                      "password": {"file": str(home.layout.secret("admin"))}},
            "app_url": place.app_url, "smoke": [sys.executable, str(smoke), "{app_url}", "drill"]}}})
        before = estate_state(home)
        done = drorch_cli(config, "drill", "--to", "tokyo", "--mode", "isolated", "--yes", "--output", "json")
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert result["status"] == "succeeded" and result["measured"]["copied_bytes"] > 0, result
        assert estate_state(home) == before
        removed = step_output(config, result["run_id"], "remove the scratch database and app")
        assert "shop" in removed["dropped"]
        left = {row["name"] for row in place.db.query("SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA")}
        assert "shop" not in left and place.db.state().read_only  # the copy of production data is gone
    finally:
        scratch.stop(home, "tokyo")


def test_an_isolated_drill_never_copies_into_one_of_the_estates_databases(home: Lab, tmp_path: Path) -> None:
    """Refused when loading the config (a site's address), and again at run time (past that check)."""
    nhn = home.config.site("nhn").mysql
    place = {"mysql": {"host": nhn.host, "port": nhn.port, "user": nhn.user,
                       "password": {"file": str(home.layout.secret("admin"))}}, "app_url": "http://127.0.0.1:9"}
    config = estate_config(home, tmp_path / "estate", isolated={"scratch": {"tokyo": place}})
    done = drorch_cli(config, "drill", "--to", "tokyo", "--mode", "isolated", "--yes")
    assert done.returncode == 2 and "isolated.scratch.tokyo.mysql" in done.stderr, done.stderr
    assert "is nhn's database" in done.stderr
    before = estate_state(home)
    isolated = Isolated(scratch={"tokyo": ScratchSite(mysql=nhn, app_url="http://127.0.0.1:9")})
    estate = Estate(home.config.model_copy(update={"isolated": isolated}))
    with pytest.raises(RefusedForSafety, match="replicates from"):
        ConfiguredBubble(estate, "tokyo", isolated, tmp_path).start("tokyo")
    assert estate_state(home) == before


@pytest.mark.parametrize(("mode", "sections", "field"), [
    ("switchover", {}, "ground_truth"),
    ("chaos", {"ground_truth": {"load": ["x", "{log}"], "verify": ["x", "{log}"]}}, "chaos"),
    ("isolated", {}, "isolated.scratch.tokyo"),
    ("switchover", {"ground_truth": {"load": ["no-such-client", "{log}"], "verify": ["true", "{log}"]}},
     "ground_truth.load: program 'no-such-client'"),
    ("chaos", {"ground_truth": {"load": ["true", "{log}"], "verify": ["true", "{log}"]},
               "chaos": {"fault": {"command": ["true"]}, "heal": ["./no-such-heal"]}},
     "chaos.heal: program 'no-such-heal'"),
    ("chaos", {"ground_truth": {"load": ["true", "{log}"], "verify": ["true", "{log}"]},
               "chaos": {"fault": {"fis": {"experiment_template_id": "EXTnope"}}}},
     "chaos.fault.fis.experiment_template_id: no FIS experiment template 'EXTnope'"),
])
def test_a_drill_missing_what_the_estate_must_supply_exits_2_before_anything_changes(
        lab: Lab, tmp_path: Path, mode: str, sections: dict[str, Any], field: str) -> None:
    config = estate_config(lab, tmp_path / "estate", **sections)
    runs = len(open_journal(lab.config).runs(500))
    done = drorch_cli(config, "drill", "--to", "tokyo", "--mode", mode, "--yes")
    assert done.returncode == 2 and f"{config}: {field}" in done.stderr, done.stderr
    assert len(open_journal(lab.config).runs(500)) == runs  # not even a run was started
    assert writable_sites(lab) == ["seoul"]


def test_a_chaos_drill_whose_fault_breaks_nothing_fails_saying_what_is_left(home: Lab, tmp_path: Path) -> None:
    from drorch.drill.chaos import chaos_drill
    from drorch.errors import OperationFailed

    config = load_config(estate_config(home, tmp_path / "estate", ground_truth=lab_ground_truth(home),
                                       chaos={"fault": {"command": ["true", "{site}"]}}, state=private_state(tmp_path)))
    with pytest.raises(OperationFailed) as failed:
        chaos_drill(Estate(config), "tokyo", 10, open_journal(config), timeout=5)
    assert "no automatic failover within 5 s" in str(failed.value)
    assert "left: seoul is still broken by the drill's fault" in str(failed.value)
    assert "`drorch failover --to tokyo` may be needed" in str(failed.value)
    assert writable_sites(home) == ["seoul"]  # `true` broke nothing: nothing moved
