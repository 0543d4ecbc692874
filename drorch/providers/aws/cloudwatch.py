"""CloudWatch: AWS's own view of DynamoDB global-table replication latency.

drorch's probe items measure what a client would see; ``ReplicationLatency`` is
what AWS reports for the same table and region pair. Showing both lets users
see whether the two agree.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from drorch.providers import retry


def replication_latency_seconds(cw: Any, table: str, receiving_region: str, minutes: int = 5) -> float | None:
    """The newest one-minute average of ``ReplicationLatency`` (reported in ms) in seconds; None without data."""
    now = dt.datetime.now(dt.UTC)
    response = retry.call(lambda: cw.get_metric_statistics(
        Namespace="AWS/DynamoDB", MetricName="ReplicationLatency",
        Dimensions=[{"Name": "TableName", "Value": table}, {"Name": "ReceivingRegion", "Value": receiving_region}],
        StartTime=now - dt.timedelta(minutes=minutes), EndTime=now + dt.timedelta(minutes=1),  # the current period
        Period=60, Statistics=["Average"],
    ))
    points = sorted(response.get("Datapoints", []), key=lambda p: p["Timestamp"])
    return float(points[-1]["Average"]) / 1000.0 if points else None
