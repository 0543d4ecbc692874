"""Immutable results of one probe round, shared by status, metrics and the detector."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ProbeResult:
    """One measurement: did it succeed, what value, how long it took, and details for people."""

    site: str
    probe: str
    ok: bool
    value: float | None
    latency_seconds: float
    detail: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class Snapshot:
    """Every probe result of one round, taken at one moment."""

    at: float
    results: tuple[ProbeResult, ...]

    def get(self, site: str, probe: str) -> ProbeResult | None:
        return next((r for r in self.results if r.site == site and r.probe == probe), None)

    def for_site(self, site: str) -> tuple[ProbeResult, ...]:
        return tuple(r for r in self.results if r.site == site)


def timed(site: str, probe: str, measure: Callable[[], tuple[bool, float | None, dict[str, Any]]]) -> ProbeResult:
    """Run ``measure`` and wrap its outcome; any exception is a failed probe with its type and message."""
    started = time.monotonic()
    try:
        ok, value, detail = measure()
    except Exception as exc:  # a probe reports failure, it never raises
        return ProbeResult(site, probe, False, None, time.monotonic() - started, {}, _describe(exc))
    return ProbeResult(site, probe, ok, value, time.monotonic() - started, detail)


def _describe(exc: Exception) -> str:
    text = str(exc.args[1]) if len(exc.args) > 1 and isinstance(exc.args[0], int) else str(exc)
    return f"{type(exc).__name__}: {text}"[:300]
