"""DynamoDB: table health, and the probe items that measure cross-region replication lag.

Lag is "age of the newest probe written in region A that is visible in region B":
each region writes probes into its own copy of a replicated probe table, and a
reader in any region reads what has arrived there.

Item layout in the probe table (partition key ``region`` S, sort key ``seq`` N):

* probe ``(region=R, seq=N)`` with ``written_at`` (N, epoch seconds) and ``expires_at``
  (N, epoch seconds + PROBE_RETENTION_SECONDS; turn on TTL on it to bound the table):
  the history, one item per probe, so a reader can tell exactly which probes arrived;
* marker ``(region="#latest", seq=crc32(R))`` with ``writer`` = R, ``latest_seq`` and
  ``written_at``: the newest probe of region R. All markers share one partition, so
  ``latest_probes`` is one small Query whatever the history size; each region owns
  its own marker item, so global tables' per-item last-writer-wins never lets one
  region's write erase another's. The marker only moves forward in time (conditional
  on ``written_at``): a replayed old probe never moves it back, and a writer whose
  ``seq`` counter restarted still moves it, so lag never looks frozen after a restart.

The probe item is written before the marker, so a marker never names a probe its
own region does not have. They are two writes, not a transaction: a transaction
would not make them arrive together in another region anyway.
"""

from __future__ import annotations

import functools
import math
import zlib
from dataclasses import dataclass
from typing import Any

import botocore.exceptions

from drorch.errors import OperationFailed
from drorch.providers import retry

LATEST_PARTITION = "#latest"
PROBE_RETENTION_SECONDS = 86400


@dataclass(frozen=True)
class TableStatus:
    """``item_count`` is DynamoDB's estimate, refreshed about every six hours; ``stream_arn`` is None when off."""

    name: str
    status: str
    stream_enabled: bool
    stream_arn: str | None
    item_count: int


@dataclass(frozen=True)
class Probe:
    """The newest probe of ``region`` visible in the table read."""

    region: str
    seq: int
    written_at: float


def table_status(ddb: Any, name: str) -> TableStatus:
    """Status and stream of table ``name``; OperationFailed if the client's region has no such table."""
    try:
        table = retry.call(lambda: ddb.describe_table(TableName=name))["Table"]
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            raise OperationFailed(f"DynamoDB table {name} not found in {ddb.meta.region_name}") from None
        raise
    enabled = bool(table.get("StreamSpecification", {}).get("StreamEnabled", False))
    return TableStatus(
        name=str(table["TableName"]),
        status=str(table["TableStatus"]),
        stream_enabled=enabled,
        stream_arn=table.get("LatestStreamArn") if enabled else None,
        item_count=int(table.get("ItemCount", 0)),
    )


def write_probe(ddb: Any, table: str, region: str, seq: int, written_at: float, attempts: int = 4) -> None:
    """Write probe ``seq`` of ``region`` and move that region's marker to it (see the module docstring).

    The probe writer passes ``attempts=1``: a late probe is worth less than the next one on time.
    """
    if region == LATEST_PARTITION or seq < 0 or not math.isfinite(written_at):
        raise ValueError(f"invalid probe: region={region!r} seq={seq} written_at={written_at}")
    at = repr(float(written_at))  # repr round-trips exactly, so readers get the same float back
    item = {
        "region": {"S": region},
        "seq": {"N": str(seq)},
        "written_at": {"N": at},
        "expires_at": {"N": str(int(written_at) + PROBE_RETENTION_SECONDS)},
    }
    retry.call(lambda: ddb.put_item(TableName=table, Item=item), attempts=attempts)
    try:
        retry.call(
            lambda: ddb.update_item(
                TableName=table,
                Key={"region": {"S": LATEST_PARTITION}, "seq": {"N": str(marker_key(region))}},
                UpdateExpression="SET #writer = :region, #latest = :seq, #at = :at",
                ConditionExpression="attribute_not_exists(#at) OR #at < :at",
                ExpressionAttributeNames={"#writer": "writer", "#latest": "latest_seq", "#at": "written_at"},
                ExpressionAttributeValues={":region": {"S": region}, ":seq": {"N": str(seq)}, ":at": {"N": at}},
            ),
            attempts=attempts,
        )
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
        # The marker already names a probe written at this time or later: nothing to move.


def latest_probes(ddb: Any, table: str) -> dict[str, Probe]:
    """Per writing region, the newest probe visible in this client's region (strongly consistent read)."""
    found: dict[str, Probe] = {}
    start: dict[str, Any] | None = None
    while True:
        page = retry.call(functools.partial(ddb.query, **_latest_query(table, start)))
        for item in page.get("Items", []):
            if not {"writer", "latest_seq", "written_at"} <= item.keys():
                continue  # a marker still being built (an update_item that created it arrives key first)
            probe = Probe(
                region=item["writer"]["S"],
                seq=int(item["latest_seq"]["N"]),
                written_at=float(item["written_at"]["N"]),
            )
            found[probe.region] = probe
        start = page.get("LastEvaluatedKey")
        if not start:
            return found


def _latest_query(table: str, start: dict[str, Any] | None) -> dict[str, Any]:
    query: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "#r = :latest",
        "ExpressionAttributeNames": {"#r": "region"},
        "ExpressionAttributeValues": {":latest": {"S": LATEST_PARTITION}},
        "ConsistentRead": True,
    }
    if start:
        query["ExclusiveStartKey"] = start
    return query


def marker_key(region: str) -> int:
    """A stable sort key per writing region (crc32: same in every process and Python version)."""
    return zlib.crc32(region.encode("utf-8"))
