"""The metrics drorch exports, and how one probe round updates them.

A dedicated registry (not the process-global default) keeps the exported set
exactly what is documented here, and lets tests build as many as they like.
Series that describe the topology (who replicates from whom, who is standby) are
removed when the topology changes: after a failover, the old seoul -> tokyo lag
must disappear, not stay frozen on a dashboard.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from drorch.config.schema import Config
from drorch.probes.detector import Verdicts
from drorch.probes.readiness import Readiness, errant_in_round
from drorch.probes.result import Snapshot
from drorch.replication.dynamodb.stats import RoundStats
from drorch.state.journal import RunRecord


@dataclass
class Metrics:
    registry: CollectorRegistry
    site_up: Gauge
    database_writable: Gauge
    probe_success: Gauge
    probe_duration: Histogram
    replication_lag: Gauge
    replication_running: Gauge
    semi_sync_active: Gauge
    errant_transactions: Gauge
    vpn_tunnel_up: Gauge
    dns_active_site: Gauge
    standby_ready: Gauge
    objective: Gauge
    failover_total: Gauge
    last_failover_rto: Gauge
    last_failover_rpo: Gauge
    step_duration: Gauge
    lease_held: Gauge
    drill_last_success: Gauge
    drill_objective_met: Gauge
    drill_rto: Gauge
    drill_rpo: Gauge
    replicator_lag: Gauge
    replicator_caught_up: Gauge
    replicator_errors: Gauge
    replicated_changes: Counter
    uncarried_writes: Counter
    backup_rpo: Gauge
    backup_last_success: Gauge
    shown: dict[str, set[tuple[str, ...]]] = field(default_factory=dict)  # topology series set last round


def create(config: Config) -> Metrics:
    registry = CollectorRegistry(auto_describe=True)

    def gauge(name: str, doc: str, labels: tuple[str, ...]) -> Gauge:
        return Gauge(name, doc, labels, registry=registry)

    metrics = Metrics(
        registry=registry,
        site_up=gauge("drorch_site_up", "1 when the detector judges the site up (app and database)", ("site",)),
        database_writable=gauge("drorch_database_writable",
                                "1 when the site's database answers and accepts writes (read_only off)", ("site",)),
        probe_success=gauge("drorch_probe_success", "1 when the last probe succeeded", ("site", "probe")),
        probe_duration=Histogram("drorch_probe_duration_seconds", "time one probe took", ("probe",),
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5), registry=registry),
        replication_lag=gauge("drorch_replication_lag_seconds",
                              "heartbeat lag: now minus the newest heartbeat the replica holds",
                              ("store", "source", "replica")),
        replication_running=gauge("drorch_replication_running", "1 when both replication threads run", ("replica",)),
        semi_sync_active=gauge("drorch_semi_sync_active", "1 while the primary replicates semi-synchronously",
                               ("site",)),
        errant_transactions=gauge("drorch_errant_transactions",
                                  "transactions the replica holds that the primary never had (errant GTIDs; at least "
                                  "this many on MariaDB): such a replica must not be promoted", ("site",)),
        vpn_tunnel_up=gauge("drorch_vpn_tunnel_up", "1 when the VPN tunnel is up", ("site", "tunnel")),
        dns_active_site=gauge("drorch_dns_active_site", "1 for the site the PRIMARY record serves",
                              ("record", "site")),
        standby_ready=gauge("drorch_standby_ready", "1 when the standby could take over now", ("site",)),
        objective=gauge("drorch_objective_seconds", "the configured objectives", ("objective",)),
        failover_total=gauge("drorch_failover_total", "failover and playbook runs in the journal, by outcome",
                             ("to", "result")),
        last_failover_rto=gauge("drorch_last_failover_rto_seconds", "RTO of the newest finished failover", ()),
        last_failover_rpo=gauge("drorch_last_failover_rpo_seconds",
                                "RPO of the newest failover (NaN when it could not be proven)", ()),
        step_duration=gauge("drorch_playbook_step_duration_seconds", "step durations of each playbook's newest run",
                            ("playbook", "step")),
        lease_held=gauge("drorch_lease_held", "1 while this controller holds the controller lease", ("controller",)),
        drill_last_success=gauge("drorch_drill_last_success_timestamp",
                                 "when this drill last ended with every objective met (unix seconds)",
                                 ("drill", "mode", "to")),
        drill_objective_met=gauge("drorch_drill_objective_met", "1 when this drill's newest run met the objective",
                                  ("drill", "mode", "to", "objective")),
        drill_rto=gauge("drorch_drill_rto_seconds",
                        "RTO of this drill's newest run (the worse of drorch's and the client's)",
                        ("drill", "mode", "to")),
        drill_rpo=gauge("drorch_drill_rpo_seconds",
                        "RPO of this drill's newest run (the worse of drorch's and the lost writes' span)",
                        ("drill", "mode", "to")),
        replicator_lag=gauge("drorch_dynamodb_replicator_lag_seconds",
                             "drorch's stream replicator: age of the newest change it shipped when it landed",
                             ("table", "source", "target")),
        replicator_caught_up=gauge("drorch_dynamodb_replicator_caught_up",
                                   "1 when the replicator read the source's stream to its end in its last round",
                                   ("table", "source", "target")),
        replicator_errors=gauge("drorch_dynamodb_replicator_errors", "errors in the replicator's last round", ()),
        replicated_changes=Counter("drorch_dynamodb_replicated_changes", "changes the replicator wrote to a copy",
                                   ("table", "source", "target"), registry=registry),
        uncarried_writes=Counter("drorch_dynamodb_uncarried_writes",
                                 "writes made at a follow-primary table's non-source copy: drorch does not carry them",
                                 ("table", "site"), registry=registry),
        backup_rpo=gauge("drorch_backup_rpo_seconds",
                         "age of the newest binlog event shipped to the object store: what a restore would lose", ()),
        backup_last_success=gauge("drorch_backup_last_success_timestamp",
                                  "when the newest complete base backup finished (unix seconds)", ()),
    )
    metrics.objective.labels("rto").set(config.objectives.rto_seconds)
    metrics.objective.labels("rpo").set(config.objectives.rpo_seconds)
    metrics.backup_rpo.set(float("nan"))  # nothing shipped yet: unknown
    metrics.backup_last_success.set(float("nan"))
    metrics.last_failover_rto.set(float("nan"))  # no failover yet: unknown, not a perfect zero
    metrics.last_failover_rpo.set(float("nan"))
    return metrics


def update(metrics: Metrics, config: Config, snapshot: Snapshot, verdicts: Verdicts,
           readiness: dict[str, Readiness]) -> None:
    """Reflect one round in the metrics."""
    for result in snapshot.results:
        metrics.probe_success.labels(result.site, result.probe).set(1 if result.ok else 0)
        metrics.probe_duration.labels(result.probe).observe(result.latency_seconds)
    for site, verdict in verdicts.sites.items():
        metrics.site_up.labels(site).set(1 if verdict.up else 0)
    topology = _Topology(metrics)
    primary = verdicts.primary
    for site in config.sites:
        database = snapshot.get(site, "database")
        if database is not None:
            metrics.database_writable.labels(site).set(1 if database.ok and database.detail.get("writable") else 0)
        if site == primary:
            active = database is not None and database.ok and database.detail.get("semi_sync_source_active")
            topology.set("semi_sync_active", (site,), 1 if active else 0)
            continue
        running = database is not None and database.ok and database.detail.get("io_running") and \
            database.detail.get("sql_running")
        topology.set("replication_running", (site,), 1 if running else 0)
        primary_db = snapshot.get(primary, "database") if primary else None
        if database is not None and database.ok and primary_db is not None and primary_db.ok:
            topology.set("errant_transactions", (site,), errant_in_round(database.detail, primary_db.detail)[1])
        if database is not None and database.ok and database.value is not None:
            topology.set("replication_lag", ("mysql", primary, site), database.value)
        ready = readiness.get(site)
        topology.set("standby_ready", (site,), 1 if ready is not None and ready.ready else 0)
    for site in config.sites:
        dynamodb = snapshot.get(site, "dynamodb")
        if dynamodb is not None and dynamodb.ok:
            for source_region, lag in dynamodb.detail.get("probe_lag", {}).items():
                topology.set("replication_lag", ("dynamodb", source_region, site), lag)
        vpn = snapshot.get(site, "vpn")
        if vpn is not None:
            for tunnel, state in vpn.detail.get("tunnels", {}).items():
                metrics.vpn_tunnel_up.labels(site, tunnel).set(1 if state == "UP" else 0)
    dns = snapshot.get("*", "dns")
    if dns is not None and dns.ok:
        for site in config.dns.sites:
            metrics.dns_active_site.labels(config.dns.record, site).set(1 if dns.detail.get("primary") == site else 0)
    topology.prune()


def update_backups(metrics: Metrics, rpo_seconds: float | None, last_success: float | None) -> None:
    """The backup tier's figures (NaN while unknown: nothing shipped, no base backup yet)."""
    metrics.backup_rpo.set(float("nan") if rpo_seconds is None else rpo_seconds)
    metrics.backup_last_success.set(float("nan") if last_success is None else last_success)


def update_replication(metrics: Metrics, stats: RoundStats) -> None:
    """One round of drorch's DynamoDB stream replicator; pairs that no longer ship (after a reversal) disappear."""
    topology = _Topology(metrics, ("replicator_lag", "replicator_caught_up"))
    for pair in stats.pairs:
        labels = (pair.table, pair.source, pair.target)
        if pair.lag_seconds is not None:
            topology.set("replicator_lag", labels, pair.lag_seconds)
        topology.set("replicator_caught_up", labels, 1 if pair.caught_up else 0)
        metrics.replicated_changes.labels(*labels).inc(pair.shipped)
    for tracked in stats.tracked:
        metrics.uncarried_writes.labels(tracked.table, tracked.site).inc(tracked.local_writes)
    metrics.replicator_errors.set(len(stats.errors))
    topology.prune()


class _Topology:
    """Sets topology series for one round and, at its end, removes those the round no longer has."""

    NAMES = ("semi_sync_active", "replication_running", "replication_lag", "standby_ready", "errant_transactions")

    def __init__(self, metrics: Metrics, names: tuple[str, ...] = NAMES) -> None:
        self.metrics = metrics
        self.now: dict[str, set[tuple[str, ...]]] = {name: set() for name in names}

    def set(self, name: str, labels: tuple[str, ...], value: float) -> None:
        gauge: Gauge = getattr(self.metrics, name)
        gauge.labels(*labels).set(value)
        self.now[name].add(labels)

    def prune(self) -> None:
        for name, now in self.now.items():
            gauge: Gauge = getattr(self.metrics, name)
            for gone in self.metrics.shown.get(name, set()) - now:
                gauge.remove(*gone)
            self.metrics.shown[name] = now


def update_runs(metrics: Metrics, runs: list[RunRecord]) -> None:
    """Failover and drill history from the journal, so runs made by any controller or CLI show up."""
    counts: dict[tuple[str, str], int] = {}
    newest_failover = None
    seen_playbooks: set[str] = set()
    seen_drills: set[str] = set()
    for run in runs:  # newest first
        if run.status == "running":
            continue
        if run.operation == "drill":
            _update_drill(metrics, run, seen_drills)
            continue
        to = str(run.summary.get("to") or run.summary.get("parameters", {}).get("to") or "?")
        counts[(to, run.status)] = counts.get((to, run.status), 0) + 1
        if newest_failover is None and run.operation == "failover" and run.status == "succeeded":
            newest_failover = run
        name = str(run.summary.get("playbook") or run.operation.removeprefix("playbook:"))
        if name not in seen_playbooks:
            seen_playbooks.add(name)
            for step in run.steps:
                if step.duration_seconds is not None:
                    metrics.step_duration.labels(name, step.name).set(step.duration_seconds)
    for (to, result), count in counts.items():
        metrics.failover_total.labels(to, result).set(count)
    if newest_failover is not None:
        rto, rpo = newest_failover.summary.get("rto_seconds"), newest_failover.summary.get("rpo_seconds")
        metrics.last_failover_rto.set(float(rto) if rto is not None else float("nan"))
        metrics.last_failover_rpo.set(float(rpo) if rpo is not None else float("nan"))


def drill_name(summary: dict[str, object]) -> str:
    """A drill's name: the configured schedule's, or MODE-TO for one run by hand."""
    return str(summary.get("schedule") or f"{summary.get('mode', 'switchover')}-{summary.get('to', '?')}")


def _update_drill(metrics: Metrics, run: RunRecord, seen: set[str]) -> None:
    """Per drill, its newest finished run sets the gauges; its newest success the timestamp (newest first)."""
    name = drill_name(run.summary)
    labels = (name, str(run.summary.get("mode", "switchover")), str(run.summary.get("to", "?")))
    if run.status == "succeeded" and f"{name}/success" not in seen:
        seen.add(f"{name}/success")
        metrics.drill_last_success.labels(*labels).set(run.finished_at or run.started_at)
    if name in seen:
        return
    seen.add(name)
    objectives = run.summary.get("objectives", {})
    for objective in ("rto", "rpo"):
        verdict = objectives.get(objective)
        metrics.drill_objective_met.labels(*labels, objective).set(1 if verdict and verdict.get("met") else 0)
        measured = float(verdict["measured_seconds"]) if verdict else float("nan")
        (metrics.drill_rto if objective == "rto" else metrics.drill_rpo).labels(*labels).set(measured)


def update_lease(metrics: Metrics, controller: str, held: bool) -> None:
    """Whether this controller leads: exactly one ``drorch_lease_held`` of 1 across controllers is healthy."""
    metrics.lease_held.labels(controller).set(1 if held else 0)
