"""The controller loop: probe, detect, assess readiness, export metrics, write heartbeats and probe items.

Probe rounds run at the detection interval; heartbeats run on their own, finer
clock in a separate thread and go only to the one writable database (none while
there are zero or two). DynamoDB probe items go to every region's probe table
from their own threads (every controller writes them: twice is harmless), and
the leading controller runs the DynamoDB stream replicator and the backups
(binlog shipping, scheduled base backups) in others.
Shutdown on a stop event is graceful: the current round finishes, threads are
joined, the metrics server is closed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import start_http_server

from drorch.config.schema import Config
from drorch.data import heartbeat
from drorch.data.probe_items import ProbeItemWriter
from drorch.drill.schedule import Scheduler
from drorch.metrics import registry
from drorch.probes.collect import Collector, FaultInjector
from drorch.probes.detector import Detector, Verdicts, writable_sites
from drorch.probes.readiness import Readiness, assess
from drorch.probes.report import report
from drorch.probes.result import Snapshot
from drorch.providers.estate import Estate
from drorch.serve import automation
from drorch.serve.backups import BackupLoop
from drorch.serve.leadership import Leadership
from drorch.serve.replication import ReplicationLoop
from drorch.state.backends import open_journal, open_lease


@dataclass(frozen=True)
class Round:
    snapshot: Snapshot
    verdicts: Verdicts
    readiness: dict[str, Readiness]
    decision: automation.Decision
    leader: bool = False  # this controller held the lease in this round


OnRound = Callable[[Round], None]


def _listen_address(config: Config) -> tuple[str, int]:
    host, _, port = config.metrics.listen.rpartition(":")
    return host, int(port)


def serve(config: Config, stop: threading.Event, on_round: OnRound | None = None,
          fault: FaultInjector | None = None, trigger: str = "automatic") -> None:
    """Run until ``stop`` is set.

    A chaos drill runs its own controller with ``trigger="chaos-drill"``: its failover is journaled as the
    drill's, starts no anti-flapping block, and it publishes no status over a real controller's.
    """
    publishing = trigger == "automatic"
    estate = Estate(config)
    metrics = registry.create(config)
    host, port = _listen_address(config)
    server, server_thread = start_http_server(port, addr=host, registry=metrics.registry)
    collector = Collector(estate, fault=fault)
    detector = Detector(config)
    journal = open_journal(config)
    leadership = Leadership(open_lease(config), config.state.lease.ttl_seconds)
    drills = Scheduler(config, journal, since=time.time())
    writable_now: list[str] = []
    writer = heartbeat.Writer(estate.mysql, lambda: writable_now[0] if len(writable_now) == 1 else None,
                              config.data.heartbeat.table, config.data.heartbeat.interval_seconds)
    probe_items = ProbeItemWriter(estate)
    replication = ReplicationLoop(estate, lambda: leadership.keeper,
                                  lambda stats: registry.update_replication(metrics, stats))
    backups = BackupLoop(estate, lambda: leadership.keeper,
                         lambda rpo, last: registry.update_backups(metrics, rpo, last))
    interval = config.detection.interval_seconds
    try:
        probe_items.start()
        first = collector.round()
        writable_now[:] = writable_sites(first, list(config.sites))
        writer.start()
        next_round = time.monotonic()
        snapshot = first
        while not stop.is_set():
            verdicts = detector.observe(snapshot)
            writable_now[:] = writable_sites(snapshot, list(config.sites))
            readiness = assess(config, snapshot, verdicts.primary)
            registry.update(metrics, config, snapshot, verdicts, readiness)
            leader = leadership.refresh()
            registry.update_lease(metrics, leadership.holder, leader)
            if leader and not (replication.started and backups.started):
                replication.start()  # once this controller leads; they idle whenever it stops leading
                backups.start()
            decision = (automation.consider(estate, journal, snapshot, verdicts, writer.last_written, leadership.keeper,
                                            trigger)
                        if leader else automation.Decision(False, f"standing by: {leadership.why_not}"))
            if leader and not decision.acted and config.drills and publishing:
                drills.run_due(estate, leadership.keeper, time.time())
            registry.update_runs(metrics, journal.runs(200))
            if publishing:
                journal.publish_status(snapshot.at, report(estate, snapshot, readiness).to_json(estate))
            if on_round is not None:
                on_round(Round(snapshot, verdicts, readiness, decision, leader))
            next_round += interval
            if stop.wait(max(0.0, next_round - time.monotonic())):
                break
            snapshot = collector.round()
    finally:
        probe_items.stop()
        replication.stop()  # ships what is pending while the lease is still held
        backups.stop()
        leadership.close()
        if publishing:
            journal.withdraw_status()
        writer.stop()
        collector.close()
        estate.close()
        server.shutdown()
        server.server_close()
        server_thread.join(timeout=5)
