"""One probe round over the whole estate, run concurrently with a deadline.

A probe that has not answered by the deadline counts as failed for this round:
a hung connection to a dying site must not delay the verdict on the others.
A failed probe is tried again within the round (``detection.probe_attempts``):
a dead site fails every attempt at once, while a lost packet rarely fails three
in a row, so random loss does not add up to a false "down" verdict.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from functools import partial

from drorch.probes import app, compute, database, dns, dynamodb, vpn
from drorch.probes.result import ProbeResult, Snapshot
from drorch.providers.estate import Estate

ProbeCall = Callable[[], ProbeResult | None]
# Slow-changing probes are refreshed at most this often (seconds); detection's app and database probes and
# the VPN run every round. Capacity and table status change in minutes, CloudWatch publishes per minute.
REFRESH_SECONDS = {"compute": 5.0, "dynamodb": 5.0}
# (site, probe) -> True to drop that probe attempt: how tests and benchmarks inject transport faults.
FaultInjector = Callable[[str, str], bool]
RETRY_PAUSE = 0.05


def probe_calls(estate: Estate) -> list[tuple[str, str, ProbeCall]]:
    """Every probe of the estate, as (site, probe name, call); ``*`` is the estate-wide DNS probe."""
    calls: list[tuple[str, str, ProbeCall]] = [("*", "dns", partial(dns.probe, estate))]
    for site in estate.config.sites:
        calls += [
            (site, "app", partial(app.probe, estate.config, site)),
            (site, "database", partial(database.probe, estate, site)),
            (site, "compute", partial(compute.probe, estate, site)),
            (site, "vpn", partial(vpn.probe, estate, site)),
            (site, "dynamodb", partial(dynamodb.probe, estate, site)),
        ]
    return calls


class Collector:
    """Runs probe rounds on a shared thread pool."""

    def __init__(self, estate: Estate, fault: FaultInjector | None = None, round_timeout: float | None = None):
        self.estate = estate
        self._fault = fault
        detection = estate.config.detection
        self._timeout = round_timeout or max(3 * detection.probe_timeout_seconds, detection.interval_seconds)
        self._calls = probe_calls(estate)
        self._last: dict[tuple[str, str], tuple[float, ProbeResult]] = {}
        self._pool = ThreadPoolExecutor(max_workers=min(32, len(self._calls) * 2), thread_name_prefix="probe")

    def round(self) -> Snapshot:
        started = time.time()
        futures: dict[Future[ProbeResult | None], tuple[str, str]] = {}
        results: list[ProbeResult] = []
        deadline = time.monotonic() + self._timeout
        for site, name, call in self._calls:
            last = self._last.get((site, name))
            if last is not None and last[1].ok and started - last[0] < REFRESH_SECONDS.get(name, 0.0):
                results.append(last[1])
                continue
            futures[self._pool.submit(self._attempts, site, name, call, deadline)] = (site, name)
        done, pending = wait(futures, timeout=self._timeout)
        for future in done:
            result = future.result()
            if result is not None:
                results.append(result)
                self._last[(result.site, result.probe)] = (started, result)
        for future in pending:
            site, name = futures[future]
            results.append(ProbeResult(site, name, False, None, self._timeout, {}, "timed out"))
        return Snapshot(started, tuple(sorted(results, key=lambda r: (r.site, r.probe))))

    def _attempts(self, site: str, name: str, call: ProbeCall, deadline: float) -> ProbeResult | None:
        result: ProbeResult | None = None
        for _ in range(self.estate.config.detection.probe_attempts):
            if self._fault is not None and self._fault(site, name):
                result = ProbeResult(site, name, False, None, 0.0, {}, "injected fault: probe lost")
            else:
                result = call()
                if result is None or result.ok:
                    return result
            if time.monotonic() + RETRY_PAUSE >= deadline:
                break
            time.sleep(RETRY_PAUSE)
        return result

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
