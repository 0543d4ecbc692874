"""A controller SIGKILLed at every step boundary of `failback-to-seoul`, and inside its parallel group, is resumed
to the correct end state.

The estate is failed over to tokyo first, through the library (a switchover: seconds), then a
copy of the shipped failback playbook pauses right before step k and the CLI run is killed there;
`drorch resume` finishes it. The worst moments are after the reprotect (seoul replicating from
tokyo, nothing else changed), after the fence (no writable database at all) and after the
promotion (seoul writable, tokyo fenced and following no one). Inside the group "follow seoul":
nhn repointed while the old primary's rejoin is in flight (tokyo's database slowed by a fault
proxy so that the branch is caught there).

``crash_then_resume`` checks the invariants after each: never two writable databases, then exactly
one, seoul; DNS on seoul; tokyo and nhn replicating from it; no acknowledged write lost under the
load written all along; the journal consistent. Tokyo's Fargate service must be back at its warm
size, the failback's last step. A successful failback leaves the lab at home, so the ``home``
fixture's restore after each case costs nothing.

A file of its own, beside test_crash_every_step.py, so that pytest-xdist's loadfile distribution
runs the two on different workers.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from drorch.config.schema import EcsCompute
from drorch.engine.failover import failover
from drorch.lab.control import Lab
from drorch.lab.faults import FaultPlan
from tests.helpers import CRASH_PAUSE, crash_then_resume, follows, paused_playbook, proxied_database, wait_for

PLAYBOOK = Path(__file__).resolve().parents[2] / "playbooks" / "failback-to-seoul.yaml"
STEPS = [step["name"] for step in yaml.safe_load(PLAYBOOK.read_text())["steps"]]
GROUP = "follow seoul"
REPOINT, REJOIN = "repoint the other replicas", "rejoin the old primary as a replica"
# `drorch failback` has no --playbook; `failover --playbook` runs the same playbook through the same engine
COMMAND = ["failover", "--to", "seoul"]
SLOW = FaultPlan(latency_seconds=0.15)  # per chunk each way: a statement ~0.3 s, well inside the client timeouts
IN_FLIGHT = 1.0  # seconds into the slowed branch before the kill: past its first statements, not at its end


@pytest.fixture()
def in_tokyo(home: Lab) -> Lab:
    """The lab failed over to tokyo (seoul and nhn replicating from it): where a failback starts."""
    result = failover(home.estate, "tokyo")
    assert result.status == "succeeded", result.error
    wait_for(lambda: follows(home, "seoul", "tokyo") and follows(home, "nhn", "tokyo"), timeout=20)
    return home


def tokyo_fargate_at_warm(lab: Lab) -> bool:
    """Tokyo's Fargate service is back at its warm size (the failback's last step)."""
    compute = lab.config.sites["tokyo"].compute
    assert isinstance(compute, EcsCompute)
    service = lab.estate.aws("tokyo", "ecs").describe_services(cluster=compute.cluster,
                                                               services=[compute.service])["services"][0]
    return int(service["desiredCount"]) == compute.warm_count


@pytest.mark.parametrize("index", range(1, len(STEPS)), ids=[f"before {name}" for name in STEPS[1:]])
def test_failback_killed_before_a_step_then_resumed(in_tokyo: Lab, tmp_path: Path, index: int) -> None:
    book = paused_playbook(PLAYBOOK, STEPS[index], tmp_path, f"failback-crash-before-{index}", pause=CRASH_PAUSE)
    crash_then_resume(in_tokyo, tmp_path, book, COMMAND, "seoul",
                      lambda steps: steps.get(CRASH_PAUSE) == "running")
    assert tokyo_fargate_at_warm(in_tokyo)


def test_failback_killed_mid_group_while_the_old_primary_rejoins(in_tokyo: Lab, tmp_path: Path) -> None:
    """nhn is repointed at seoul; tokyo's rejoin is in flight when the controller dies. Resume runs that
    branch again, and only it; tokyo ends up a replica of seoul, however far the dead branch got."""
    with proxied_database(in_tokyo, "tokyo") as (proxy, config):
        book = paused_playbook(PLAYBOOK, GROUP, tmp_path, "failback-crash-mid-group", seconds=2,
                               pause="slow tokyo down")
        rejoining_since: list[float] = []

        def slow_down() -> None:  # only now: the steps before the group run at full speed
            proxy.plan = SLOW

        def rejoin_in_flight(steps: dict[str, str]) -> bool:
            if not (steps.get(REPOINT) == "succeeded" and steps.get(REJOIN) == "running"):
                return False
            rejoining_since[:] = rejoining_since or [time.monotonic()]
            return time.monotonic() - rejoining_since[0] >= IN_FLIGHT

        result = crash_then_resume(in_tokyo, tmp_path, book, COMMAND, "seoul", rejoin_in_flight, config,
                                   (lambda steps: steps.get("slow tokyo down") == "running", slow_down), proxy.stop)
    statuses = {step["name"]: step["status"] for step in result["steps"]}
    assert statuses[REPOINT] == "skipped" and statuses[REJOIN] == "succeeded"
