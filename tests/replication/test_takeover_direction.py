"""A controller taking the lead turns the follow-primary DynamoDB tables towards the writable database.

The direction is recorded in each controller's own state file. When the leader that
failed over dies (or ran on another host), the next leader's file still names the old
source; it must follow the primary, not its stale memory.
"""

from __future__ import annotations

from drorch.engine.failover import failover
from drorch.lab.control import Lab
from drorch.replication.dynamodb.direction import follow_writable, set_source, source_of, stream_tables
from drorch.serve.replication import ReplicationLoop
from drorch.state.backends import holding_lease
from drorch.state.checkpoints import open_checkpoints
from tests.helpers import wait_for, writable_sites


def _sources(lab: Lab) -> dict[str, str]:
    config = lab.config
    checkpoints = open_checkpoints(config)
    return {t.name: source_of(config, checkpoints, t) for t in stream_tables(config)
            if t.direction == "follow-primary"}


def test_a_new_leader_follows_the_writable_database_not_its_stale_state(home: Lab) -> None:
    assert _sources(home) and set(_sources(home).values()) == {"seoul"}
    assert failover(home.estate, "tokyo").status == "succeeded"
    assert set(_sources(home).values()) == {"tokyo"}  # the failover turned them round...
    set_source(home.config, None, "seoul")  # ...in a state file the next leader does not have
    with holding_lease(home.config) as keeper:
        loop = ReplicationLoop(home.estate, lambda: keeper)
        loop.start()
        try:
            wait_for(lambda: set(_sources(home).values()) == {"tokyo"} or None, timeout=20)
        finally:
            loop.stop()
    assert {change.after for change in loop.followed} == {"tokyo"} and loop.followed


def test_no_single_writable_database_changes_nothing(home: Lab) -> None:
    before = _sources(home)
    assert writable_sites(home) == ["seoul"]
    assert follow_writable(home.config, open_checkpoints(home.config), []) == []  # all fenced: a failover midway
    assert follow_writable(home.config, open_checkpoints(home.config), ["seoul", "tokyo"]) == []  # split-brain
    assert follow_writable(home.config, open_checkpoints(home.config), ["seoul"]) == []  # already followed
    assert _sources(home) == before
