"""HTTP health checks of application endpoints, the way a load balancer does them."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import requests


@dataclass(frozen=True)
class HealthResult:
    url: str
    ok: bool
    status: int | None
    latency_seconds: float
    body: dict[str, Any]
    error: str | None = None


def check(url: str, timeout: float = 2.0) -> HealthResult:
    """One GET; healthy means 2xx/3xx within the timeout (Route 53's definition)."""
    started = time.monotonic()
    try:
        response = requests.get(url, timeout=timeout, allow_redirects=False)
    except requests.RequestException as exc:
        return HealthResult(url, False, None, time.monotonic() - started, {}, type(exc).__name__)
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    ok = 200 <= response.status_code < 400
    return HealthResult(url, ok, response.status_code, time.monotonic() - started, body)
