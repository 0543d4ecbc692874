"""A controller SIGKILLed at every step boundary of `failover-to-tokyo`, and inside its parallel group, is resumed
to the correct end state.

For each top-level step k, a copy of the shipped playbook pauses right before step k; the CLI
run is killed during that pause (steps before k done, k not started: the worst moments are
right after the fence and right after the promotion). Inside the group "follow tokyo", two more
moments: both branches done but not the group (a third member still runs), and the old primary
rejoined while nhn's branch is in flight, killed with nhn's replication stopped (nhn's database
is slowed by a fault proxy so that the branch can be caught there). `drorch resume` then
finishes the run, and ``crash_then_resume`` checks the invariants: never two writable databases,
then exactly one, tokyo; DNS on tokyo; the others replicating from it; no acknowledged write lost
under the load written all along; the journal saying the old run was resumed by a succeeded one
that skipped what was done and ran again what the crash interrupted.

Failback's boundaries are in test_crash_every_step_failback.py: a file of its own, so that
pytest-xdist's loadfile distribution runs the two on different workers.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from drorch.lab.control import Lab
from drorch.lab.faults import FaultPlan
from tests.helpers import CRASH_PAUSE, crash_then_resume, paused_in_group, paused_playbook, proxied_database

PLAYBOOK = Path(__file__).resolve().parents[2] / "playbooks" / "failover-to-tokyo.yaml"
STEPS = [step["name"] for step in yaml.safe_load(PLAYBOOK.read_text())["steps"]]
GROUP = "follow tokyo"
REPOINT, REJOIN = "repoint the other replicas", "rejoin the old primary as a replica"
COMMAND = ["failover", "--to", "tokyo"]
SLOW = FaultPlan(latency_seconds=0.15)  # per chunk each way: a statement ~0.3 s, well inside the client timeouts


def paused(steps: dict[str, str]) -> bool:
    return steps.get(CRASH_PAUSE) == "running"


@pytest.mark.parametrize("index", range(1, len(STEPS)), ids=[f"before {name}" for name in STEPS[1:]])
def test_killed_before_a_step_then_resumed(home: Lab, tmp_path: Path, index: int) -> None:
    book = paused_playbook(PLAYBOOK, STEPS[index], tmp_path, f"crash-before-{index}", pause=CRASH_PAUSE)
    crash_then_resume(home, tmp_path, book, COMMAND, "tokyo", paused)


def test_killed_inside_the_group_with_both_branches_done(home: Lab, tmp_path: Path) -> None:
    """The group is unfinished (a third member runs) though both real branches are done: resume skips both."""
    book = paused_in_group(PLAYBOOK, GROUP, tmp_path, "crash-in-group")

    def both_done(steps: dict[str, str]) -> bool:
        return paused(steps) and steps.get(REPOINT) == steps.get(REJOIN) == "succeeded"

    result = crash_then_resume(home, tmp_path, book, COMMAND, "tokyo", both_done)
    statuses = {step["name"]: step["status"] for step in result["steps"]}
    assert statuses[REPOINT] == statuses[REJOIN] == "skipped" and statuses[CRASH_PAUSE] == "succeeded"


def test_killed_mid_group_with_nhn_following_no_one(home: Lab, tmp_path: Path) -> None:
    """The old primary has rejoined; nhn's branch is in flight, killed between nhn's STOP SLAVE and START SLAVE
    (nhn follows no one). Resume runs that branch again, and only it."""
    with proxied_database(home, "nhn") as (proxy, config):
        book = paused_playbook(PLAYBOOK, GROUP, tmp_path, "crash-mid-group", seconds=2, pause="slow nhn down")

        def slow_down() -> None:  # only now: the steps before the group run at full speed
            proxy.plan = SLOW

        def nhn_stopped(steps: dict[str, str]) -> bool:
            if not (steps.get(REJOIN) == "succeeded" and steps.get(REPOINT) == "running"):
                return False
            replica = home.admin("nhn").state().replica
            return replica is None or not replica.io_running

        result = crash_then_resume(home, tmp_path, book, COMMAND, "tokyo", nhn_stopped, config,
                                   (lambda steps: steps.get("slow nhn down") == "running", slow_down), proxy.stop)
    statuses = {step["name"]: step["status"] for step in result["steps"]}
    assert statuses[REJOIN] == "skipped" and statuses[REPOINT] == "succeeded"
