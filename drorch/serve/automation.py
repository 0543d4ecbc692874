"""Automatic failover: act once when the primary is declared dead, then stay blocked for a while.

Like orchestrator's RecoveryPeriodBlockSeconds, an automatic failover blocks the
next one for ``automation.block_seconds``: a flapping network must not bounce the
primary between sites. The block is read from the journal, so a restarted
controller honours it too, and from a note in the lease store, so that the next
leader on another host or pod (with a journal of its own) honours it as well; a
manual failover is never blocked.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from drorch.engine.executor import Options
from drorch.engine.failover import FailoverResult, failover
from drorch.engine.topology import observe
from drorch.errors import DrorchError
from drorch.probes.detector import Verdicts
from drorch.probes.result import Snapshot
from drorch.providers.estate import Estate
from drorch.providers.mysql.gtid import GtidPosition
from drorch.state.journal import Journal
from drorch.state.lease import Keeper


@dataclass(frozen=True)
class Decision:
    acted: bool
    reason: str
    result: FailoverResult | None = None


LAST_AUTOMATIC_NOTE = "last-automatic-failover"


def blocked_until(journal: Journal, block_seconds: float, shared: float | None = None) -> float | None:
    """When the block from the last automatic failover ends (None: not blocked).

    ``shared``: when the last automatic failover started by any controller's account (the lease store's
    note); the newer of it and this controller's journal counts.
    """
    started = [shared] if shared is not None else []
    newest = next((run for run in journal.runs(50)
                   if run.operation == "failover" and run.summary.get("trigger") == "automatic"), None)
    if newest is not None:
        started.append(newest.started_at)
    if not started:
        return None
    until = max(started) + block_seconds
    return until if until > time.time() else None


def shared_last_automatic(lease: Keeper | None) -> float | None:
    """The last automatic failover's start as the controllers' shared note records it (None: none, or no lease)."""
    if lease is None:
        return None
    found = lease.store.get_note(LAST_AUTOMATIC_NOTE)
    try:
        return None if found is None else float(found)
    except ValueError:
        return None  # not ours to interpret: the journal still bounds it


def choose_target(estate: Estate, snapshot: Snapshot, dead: str) -> str | None:
    """The configured candidates in order, else the replica that received the most (semi-sync pair first)."""
    from drorch.replication.roles import semi_sync_partner

    alive = {site: r for site in estate.config.sites if site != dead
             and (r := snapshot.get(site, "database")) is not None and r.ok}
    for site in estate.config.automation.candidates:
        if site in alive:
            return site
    partner = semi_sync_partner(estate, dead)
    if partner in alive:
        return partner

    def received(site: str) -> tuple[int, ...]:
        try:
            return GtidPosition.parse(str(alive[site].detail.get("received_gtid", ""))).sort_key()
        except ValueError:
            return (0,)

    return max(alive, key=received) if alive else None


def consider(estate: Estate, journal: Journal, snapshot: Snapshot, verdicts: Verdicts,
             last_heartbeat: float | None = None, lease: Keeper | None = None,
             trigger: str = "automatic") -> Decision:
    """Fail over automatically if the primary is dead, automation is on and no block is in force.

    ``last_heartbeat``: when the heartbeat writer last got an acknowledged write on the primary (gives the RPO);
    ``lease``: the controller lease this controller holds (its token goes into the journal);
    ``trigger``: journaled; only ``automatic`` runs start the anti-flapping block (a chaos drill's do not).
    """
    automation = estate.config.automation
    if not automation.auto_failover or not verdicts.primary_database_dead:
        return Decision(False, verdicts.reason)
    try:
        until = blocked_until(journal, automation.block_seconds, shared_last_automatic(lease))
    except DrorchError as exc:
        return Decision(False, f"primary dead, but the anti-flapping note in the lease store is unreadable ({exc}): "
                               "not failing over automatically")
    if until is not None:
        return Decision(False, f"primary dead, but automatic failover is blocked until "
                               f"{time.strftime('%H:%M:%S', time.localtime(until))} (anti-flapping)")
    if observe(estate).primary_reachable:
        # Checked again right before acting: a controller whose own network hiccuped for a few rounds
        # must not turn that into a switchover nobody asked for.
        return Decision(False, f"{verdicts.primary}'s database answers again: not failing over")
    target = choose_target(estate, snapshot, verdicts.primary)
    if target is None:
        return Decision(False, "primary dead, but no replica answers")
    reason = f"detector: {verdicts.reason}"
    try:
        if trigger == "automatic" and lease is not None:  # before acting: a leader dying midway still blocks the next
            lease.store.put_note(LAST_AUTOMATIC_NOTE, repr(time.time()))
        result = failover(estate, target, journal=journal, trigger=trigger, reason=reason,
                          last_heartbeat=last_heartbeat, incident_at=verdicts.at,
                          options=Options(approvals=frozenset({"*"}), lease=lease))
    except DrorchError as exc:
        return Decision(False, f"automatic failover to {target} refused or failed: {exc}")
    return Decision(True, reason, result)
