"""Anti-flapping across controllers: a new leader with a journal of its own honours the block another noted."""

from __future__ import annotations

import time
from pathlib import Path

from drorch.probes.detector import SiteVerdict, Verdicts
from drorch.probes.result import Snapshot
from drorch.providers.estate import Estate
from drorch.serve.automation import LAST_AUTOMATIC_NOTE, blocked_until, consider
from drorch.state.lease import Keeper
from drorch.state.lease_sqlite import SQLiteLease
from drorch.state.sqlite import SQLiteJournal
from tests.synthetic import synthetic_config


def test_a_new_leader_honours_the_block_the_last_one_noted(tmp_path: Path) -> None:
    base = synthetic_config()
    config = base.model_copy(update={"automation": base.automation.model_copy(
        update={"auto_failover": True, "block_seconds": 3600})})
    SQLiteLease(tmp_path / "lease.db").put_note(LAST_AUTOMATIC_NOTE, repr(time.time() - 60))  # the dead leader's
    own_journal = SQLiteJournal(tmp_path / "journal.db")  # the new leader's: no automatic failover in it
    assert blocked_until(own_journal, 3600) is None
    keeper = Keeper(SQLiteLease(tmp_path / "lease.db"), "controller-b", 15)
    try:
        dead = Verdicts(time.time(), {s: SiteVerdict(s, s != "seoul", 3, 0.0) for s in config.sites}, "seoul",
                        True, "seoul's database failed 3 rounds")
        decision = consider(Estate(config), own_journal, Snapshot(time.time(), ()), dead, lease=keeper)
    finally:
        keeper.close()
    assert not decision.acted and "blocked until" in decision.reason and "anti-flapping" in decision.reason
    assert blocked_until(own_journal, 30, time.time() - 60) is None  # a block that has run out blocks nothing
