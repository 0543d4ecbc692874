"""The lab's stand-in for Route 53's resolvers and health checkers.

moto stores failover records and health checks but neither answers DNS nor
evaluates health. This resolver answers the record the way Route 53 would:
PRIMARY while its health check passes, else a healthy SECONDARY, else PRIMARY;
health is the real HTTP check of the target (disabled checks count as healthy,
inverted ones are flipped). A ``CachingResolver`` keeps an answer for the
record's TTL, like a client's stub resolver, so DNS flips reach lab clients with
the delay real clients would see.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from drorch.providers import http
from drorch.providers.aws import route53


@dataclass(frozen=True)
class Answer:
    value: str
    set_identifier: str
    ttl: int
    resolved_at: float


class ResolutionError(Exception):
    """No failover record to answer with."""


def _healthy(r53: Any, record: route53.FailoverRecord, timeout: float) -> bool:
    if not record.health_check_id:
        return True
    check = route53.health_check(r53, record.health_check_id)
    if check.disabled:
        return True
    target = check.ip or record.value
    result = http.check(f"http://{target}:{check.port or 80}{check.path}", timeout=timeout)
    return result.ok != check.inverted


def resolve(r53: Any, zone_id: str, name: str, rtype: str = "A", health_timeout: float = 1.0) -> Answer:
    """Answer ``name`` now, evaluating health checks afresh (no cache)."""
    records = route53.failover_records(r53, zone_id, name, rtype)
    primary = next((r for r in records if r.role == "PRIMARY"), None)
    secondary = next((r for r in records if r.role == "SECONDARY"), None)
    if primary is None and secondary is None:
        raise ResolutionError(f"no failover records for {name} in zone {zone_id}")
    chosen: route53.FailoverRecord | None = None
    if primary is not None and _healthy(r53, primary, health_timeout):
        chosen = primary
    elif secondary is not None and _healthy(r53, secondary, health_timeout):
        chosen = secondary
    chosen = chosen or primary or secondary
    assert chosen is not None
    return Answer(chosen.value, chosen.set_identifier, chosen.ttl, time.monotonic())


class CachingResolver:
    """Keeps each answer for its TTL, as a client's resolver does; thread-safe."""

    def __init__(self, r53: Any, zone_id: str, name: str, rtype: str = "A") -> None:
        self._r53, self._zone_id, self._name, self._rtype = r53, zone_id, name, rtype
        self._answer: Answer | None = None
        self._lock = threading.Lock()

    def resolve(self) -> Answer:
        with self._lock:
            answer = self._answer
            if answer is None or time.monotonic() - answer.resolved_at >= answer.ttl:
                answer = resolve(self._r53, self._zone_id, self._name, self._rtype)
                self._answer = answer
            return answer
