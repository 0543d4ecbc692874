"""``drorch status``: one probe round turned into a report for people and scripts.

Status runs a heartbeat writer itself for the duration of its round, so the lag it
shows is measured now, with the same resolution as under ``serve``, rather than the
age of whatever heartbeat happens to be newest. When ``serve`` writes heartbeats too
that is harmless: the row simply holds the newer one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from drorch.data import heartbeat
from drorch.probes.collect import Collector
from drorch.probes.detector import site_healthy, writable_sites
from drorch.probes.readiness import Readiness, assess
from drorch.probes.result import Snapshot
from drorch.providers.estate import Estate

STATUS_ROUND_SECONDS = 10.0


@dataclass(frozen=True)
class StatusReport:
    snapshot: Snapshot
    primary: str | None
    writable: tuple[str, ...]
    readiness: dict[str, Readiness]

    def to_json(self, estate: Estate) -> dict[str, Any]:
        config = estate.config
        dns = self.snapshot.get("*", "dns")
        return {
            "at": self.snapshot.at,
            "service": config.service,
            "objectives": {"rto_seconds": config.objectives.rto_seconds, "rpo_seconds": config.objectives.rpo_seconds},
            "primary": self.primary,
            "writable": list(self.writable),
            "dns": dns.detail if dns is not None and dns.ok else {"error": dns.error if dns else "not probed"},
            "sites": {
                site: {
                    "configured_role": config.site(site).role,
                    "healthy": site_healthy(self.snapshot, site),
                    "probes": {r.probe: {"ok": r.ok, "value": r.value, "latency_seconds": round(r.latency_seconds, 4),
                                         "detail": r.detail, "error": r.error}
                               for r in self.snapshot.for_site(site)},
                    "readiness": (None if site not in self.readiness else
                                  {"ready": self.readiness[site].ready, "reasons": list(self.readiness[site].reasons)}),
                }
                for site in config.sites
            },
        }


def _sole_writable(estate: Estate) -> str | None:
    """The one writable database's site (None when there are none or several: nobody gets heartbeats)."""
    writable = []
    for site in estate.config.sites:
        try:
            if not estate.mysql(site).state(attempts=1, read_timeout=2.0).read_only:
                writable.append(site)
        except Exception:  # an unreachable server is reported by the probe round itself
            continue
    return writable[0] if len(writable) == 1 else None


def _wait_replicated(estate: Estate, primary: str, seq: int, timeout: float) -> None:
    """Give the first heartbeat a moment to reach the replicas (usually milliseconds); laggards show as lag."""
    table = estate.config.data.heartbeat.table
    waiting = [s for s in estate.config.sites if s != primary]
    deadline = time.monotonic() + timeout
    while waiting and time.monotonic() < deadline:
        for site in list(waiting):
            try:
                beat = heartbeat.newest(estate.mysql(site), table, timeout=1.0)
            except Exception:  # unreachable: the probe round reports it
                waiting.remove(site)
                continue
            if beat is not None and beat.origin == primary and beat.seq >= seq:
                waiting.remove(site)
        time.sleep(0.005)


def status(estate: Estate) -> StatusReport:
    config = estate.config
    writer = None
    primary_site = _sole_writable(estate)
    if primary_site is not None:
        interval, table = config.data.heartbeat.interval_seconds, config.data.heartbeat.table
        writer = heartbeat.Writer(estate.mysql, lambda: primary_site, table, interval)
        try:
            heartbeat.write(estate.mysql(primary_site), table, primary_site, writer.seq)
        except Exception:  # e.g. a semi-sync wait on a dead replica: report lag as measured, not crash
            writer = None
        else:
            writer.start()
            _wait_replicated(estate, primary_site, writer.seq, timeout=2 * interval)
    detection = config.detection
    # One round that must answer, not detection's bounded beat: slow calls get time (each attempt is still bounded).
    collector = Collector(estate, round_timeout=max(3 * detection.probe_timeout_seconds, detection.interval_seconds,
                                                    STATUS_ROUND_SECONDS))
    try:
        snapshot = collector.round()
    finally:
        collector.close()
        estate.close()
        if writer is not None:
            writer.stop()
    return report(estate, snapshot)


def report(estate: Estate, snapshot: Snapshot, readiness: dict[str, Readiness] | None = None) -> StatusReport:
    """The report of one round (``readiness`` when the caller already assessed it)."""
    writable = writable_sites(snapshot, list(estate.config.sites))
    primary = writable[0] if len(writable) == 1 else None
    if readiness is None:
        readiness = assess(estate.config, snapshot, primary) if primary else {}
    return StatusReport(snapshot, primary, tuple(writable), readiness)
