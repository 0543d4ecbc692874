"""Application health, checked the way a load balancer or Route 53 checks it."""

from __future__ import annotations

from drorch.config.schema import Config
from drorch.probes.result import ProbeResult, timed
from drorch.providers import http


def probe(config: Config, site: str) -> ProbeResult:
    app = config.site(site).app
    url = app.url.rstrip("/") + app.health_path

    def measure() -> tuple[bool, float | None, dict[str, object]]:
        result = http.check(url, timeout=config.detection.probe_timeout_seconds)
        detail: dict[str, object] = {"status": result.status, **result.body}
        if result.error:
            detail["error"] = result.error
        return result.ok, result.latency_seconds, detail

    return timed(site, "app", measure)
