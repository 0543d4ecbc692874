"""ECS services: scale a standby's Fargate service and wait until the tasks run."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from drorch.errors import OperationFailed
from drorch.providers import retry


@dataclass(frozen=True)
class ServiceCapacity:
    desired: int
    running: int


def capacity(ecs: Any, cluster: str, service: str) -> ServiceCapacity:
    response = retry.call(lambda: ecs.describe_services(cluster=cluster, services=[service]))
    if not response["services"]:
        raise OperationFailed(f"ECS service {service} not found in cluster {cluster}")
    item = response["services"][0]
    return ServiceCapacity(desired=int(item["desiredCount"]), running=int(item["runningCount"]))


def scale(ecs: Any, cluster: str, service: str, desired: int, timeout: float = 300.0) -> ServiceCapacity:
    """Set the desired count (idempotent) and wait until that many tasks run."""
    if capacity(ecs, cluster, service).desired != desired:
        retry.call(lambda: ecs.update_service(cluster=cluster, service=service, desiredCount=desired))
    deadline = time.monotonic() + timeout
    while True:
        now = capacity(ecs, cluster, service)
        if now.running >= desired:
            return now
        if time.monotonic() > deadline:
            raise OperationFailed(
                f"ECS {cluster}/{service}: {now.running} of {desired} tasks running after {timeout:.0f} s"
            )
        time.sleep(1.0)
