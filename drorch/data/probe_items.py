"""The DynamoDB RPO probe writer: a sequenced, timestamped item in every region, every second.

DynamoDB replication (global tables, or drorch's stream replicator) is measured
the honest way: each region writes its own probe item into its copy of the probe
table, and the DynamoDB probe reads, in every region, how old the newest item
of each other region is. At a failover the age of the failed region's newest
probe seen in the new one is the RPO estimate for DynamoDB.

One thread per region, so a region that does not answer delays only its own
probes; one attempt per probe, because a late probe is worth less than the next
one on time. The sequence number starts at the clock in milliseconds, so it
keeps rising across restarts without any stored state.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from drorch.config.schema import AwsProvider
from drorch.providers.aws import dynamodb
from drorch.providers.estate import Estate


@dataclass(frozen=True)
class ProbeTarget:
    site: str
    region: str
    table: str


def targets(estate: Estate) -> list[ProbeTarget]:
    """Every AWS site with a probe table configured."""
    found = []
    for name, site in estate.config.sites.items():
        if isinstance(site.provider, AwsProvider) and site.dynamodb is not None and site.dynamodb.probe_table:
            found.append(ProbeTarget(name, site.provider.region, site.dynamodb.probe_table))
    return found


class ProbeItemWriter:
    """Writes probe items into every region's probe table at the configured interval, until stopped."""

    def __init__(self, estate: Estate, interval: float | None = None) -> None:
        self._interval = interval or estate.config.data.dynamodb.probe_interval_seconds
        self._stop = threading.Event()
        # clients are built here, in the caller's thread: building boto3 clients is not thread-safe
        self._threads = [threading.Thread(target=self._run, args=(target, estate.aws(target.site, "dynamodb")),
                                          name=f"probe-items-{target.site}", daemon=True)
                         for target in targets(estate)]
        self.last_written: dict[str, float] = {}  # site -> written_at of its newest acknowledged probe
        self.errors: dict[str, str] = {}  # site -> the last failure, until the next success

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout)

    def _run(self, target: ProbeTarget, client: Any) -> None:
        seq = int(time.time() * 1000)
        next_at = time.monotonic()
        while not self._stop.is_set():
            seq += 1
            stamp = time.time()
            try:
                dynamodb.write_probe(client, target.table, target.region, seq, stamp, attempts=1)
                self.last_written[target.site] = stamp
                self.errors.pop(target.site, None)
            except Exception as exc:  # any failure is one missed probe: reported, never fatal
                self.errors[target.site] = f"{type(exc).__name__}: {str(exc)[:200]}"
            next_at += self._interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))
