"""Metrics follow the topology: after a failover the old pairs' series disappear instead of freezing."""

from __future__ import annotations

from prometheus_client import generate_latest

from drorch.metrics import registry
from drorch.probes.detector import SiteVerdict, Verdicts
from drorch.probes.readiness import assess
from drorch.probes.result import Snapshot
from tests.synthetic import SITES, app, db, synthetic_config


def exported(metrics: registry.Metrics, name: str) -> set[str]:
    """The label parts of every sample of ``name`` in the exposition text."""
    text = generate_latest(metrics.registry).decode()
    return {line.split("{", 1)[1].split("}", 1)[0] for line in text.splitlines()
            if line.startswith(name + "{")}


def test_a_failover_removes_the_old_topology_series() -> None:
    config = synthetic_config()
    metrics = registry.create(config)

    def observe(primary: str, source: str) -> None:
        snapshot = Snapshot(1, tuple(r for site in SITES for r in (
            app(site), db(site, writable=site == primary, source=source, lag=0.2))))
        verdicts = Verdicts(1, {s: SiteVerdict(s, True, 0, 0.0) for s in SITES}, primary, False, "")
        registry.update(metrics, config, snapshot, verdicts, assess(config, snapshot, primary))

    observe("seoul", "10.0.0.1:3301")
    assert exported(metrics, "drorch_replication_lag_seconds") == {
        'replica="tokyo",source="seoul",store="mysql"', 'replica="nhn",source="seoul",store="mysql"'}
    assert exported(metrics, "drorch_standby_ready") == {'site="tokyo"', 'site="nhn"'}
    observe("tokyo", "10.0.0.1:3302")  # after a failover to tokyo
    assert exported(metrics, "drorch_replication_lag_seconds") == {
        'replica="seoul",source="tokyo",store="mysql"', 'replica="nhn",source="tokyo",store="mysql"'}
    assert exported(metrics, "drorch_standby_ready") == {'site="seoul"', 'site="nhn"'}
    assert exported(metrics, "drorch_replication_running") == {'replica="seoul"', 'replica="nhn"'}
    assert exported(metrics, "drorch_semi_sync_active") == {'site="tokyo"'}
    assert exported(metrics, "drorch_database_writable") == {'site="seoul"', 'site="tokyo"', 'site="nhn"'}
