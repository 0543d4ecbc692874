"""From probe rounds to verdicts, without flapping on one lost ping.

A site is *down* after ``failure_threshold`` consecutive unhealthy rounds and
*up* again only after as many healthy ones (hysteresis both ways). The primary's
database is declared dead only when, in addition, the replicas agree: none of
the replicas that can be asked still receives from it (orchestrator's holistic
detection). If drorch cannot reach the primary but a replica can, that is a
partition, and the verdict says so instead of "dead".
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from drorch.config.schema import Config
from drorch.probes.result import Snapshot


@dataclass(frozen=True)
class SiteVerdict:
    site: str
    up: bool
    streak: int  # consecutive rounds contradicting the current verdict
    since: float  # when the current verdict was reached


@dataclass(frozen=True)
class Verdicts:
    at: float
    sites: dict[str, SiteVerdict]
    primary: str
    primary_database_dead: bool
    reason: str


def site_healthy(snapshot: Snapshot, site: str) -> bool:
    app, database = snapshot.get(site, "app"), snapshot.get(site, "database")
    return app is not None and app.ok and database is not None and database.ok


def writable_sites(snapshot: Snapshot, sites: list[str]) -> list[str]:
    return [s for s in sites if (r := snapshot.get(s, "database")) is not None and r.ok and r.detail.get("writable")]


class Detector:
    def __init__(self, config: Config) -> None:
        self._config = config
        self._threshold = config.detection.failure_threshold
        now = time.time()
        self._sites = {name: SiteVerdict(name, True, 0, now) for name in config.sites}
        self._db_failures = dict.fromkeys(config.sites, 0)
        self._primary = config.primary_site

    def observe(self, snapshot: Snapshot) -> Verdicts:
        if not any(result.ok for result in snapshot.results):
            # Nothing answered at all: the controller's own network is the likeliest failure, so the
            # round proves nothing about the sites and counts neither way.
            return Verdicts(snapshot.at, dict(self._sites), self._primary, False,
                            "inconclusive round: no probe answered (is the controller's network down?)")
        for name, verdict in self._sites.items():
            self._sites[name] = self._step(verdict, site_healthy(snapshot, name), snapshot.at)
            database = snapshot.get(name, "database")
            self._db_failures[name] = 0 if database is not None and database.ok else self._db_failures[name] + 1
        writable = writable_sites(snapshot, list(self._config.sites))
        if len(writable) == 1:
            self._primary = writable[0]
        dead, reason = self._primary_dead(snapshot)
        return Verdicts(snapshot.at, dict(self._sites), self._primary, dead, reason)

    def _step(self, verdict: SiteVerdict, healthy: bool, at: float) -> SiteVerdict:
        if healthy == verdict.up:
            return replace(verdict, streak=0)
        streak = verdict.streak + 1
        if streak >= self._threshold:
            return SiteVerdict(verdict.site, healthy, 0, at)
        return replace(verdict, streak=streak)

    def _primary_dead(self, snapshot: Snapshot) -> tuple[bool, str]:
        primary = self._primary
        failures = self._db_failures[primary]
        if failures < self._threshold:
            return False, f"{primary}'s database answered within the last {self._threshold} rounds"
        endpoint = self._config.site(primary).mysql
        address = f"{endpoint.host}:{endpoint.port}"
        still_receiving = []
        for name in self._config.sites:
            result = snapshot.get(name, "database")
            if name == primary or result is None or not result.ok:
                continue
            if result.detail.get("io_running") and result.detail.get("source") == address:
                still_receiving.append(name)
        if still_receiving:
            return False, (f"drorch cannot reach {primary}'s database, but {', '.join(still_receiving)} still "
                           "replicate from it: a partition, not a dead primary")
        return True, f"{primary}'s database failed {failures} rounds and no replica receives from it"
