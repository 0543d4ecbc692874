"""DynamoDB Streams: is a table's change stream enabled and readable, and how many shards it has.

The stream is the data path of drorch's own cross-region replicator (``stream``
mode tables): a disabled stream, or one AWS has stopped serving, means the
standby region stops receiving writes, so the DynamoDB probe checks it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from drorch.providers import retry


@dataclass(frozen=True)
class Shard:
    shard_id: str
    parent_shard_id: str | None
    open: bool  # no ending sequence number yet: still receiving records


@dataclass(frozen=True)
class StreamInfo:
    arn: str
    status: str  # ENABLING | ENABLED | DISABLING | DISABLED
    view_type: str
    shards: tuple[Shard, ...]


def describe(streams: Any, arn: str) -> StreamInfo:
    """The stream's status and every shard (pages followed), parents before children as AWS lists them."""
    shards: list[Shard] = []
    start: str | None = None
    while True:
        kwargs = {"StreamArn": arn, **({"ExclusiveStartShardId": start} if start else {})}
        description = retry.call(functools.partial(streams.describe_stream, **kwargs))["StreamDescription"]
        for shard in description.get("Shards", []):
            shards.append(Shard(shard["ShardId"], shard.get("ParentShardId"),
                                "EndingSequenceNumber" not in shard.get("SequenceNumberRange", {})))
        start = description.get("LastEvaluatedShardId")
        if not start:
            return StreamInfo(arn, description["StreamStatus"], description.get("StreamViewType", ""), tuple(shards))
