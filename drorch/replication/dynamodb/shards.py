"""Reading one DynamoDB stream in order: shards parents-before-children, records in order within a shard.

A stream's records for one item all travel through one line of shards: a shard
closes (after hours, or when the table's partitions split) and its children carry
on. So a child is read only after its parent has been read to its end, which is
when ``GetRecords`` returns no ``NextShardIterator``; until then its records wait.

A cursor resumes ``AFTER_SEQUENCE_NUMBER`` of the last record applied (the
checkpoint), or from ``TRIM_HORIZON`` when there is none. An iterator that expired
(15 minutes unused) is fetched again from the same position. When the position
itself has aged out of the stream (24 hours), the records in between are gone:
the cursor restarts from the oldest record kept and says so, and only a backfill
can bring the copies back in step.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import botocore.exceptions

from drorch.providers import retry
from drorch.providers.aws.streams import Shard
from drorch.state.checkpoints import Checkpoint

log = logging.getLogger(__name__)


def in_order(shards: Sequence[Shard]) -> list[Shard]:
    """``shards`` with every parent before its children (a parent no longer listed has aged out)."""
    by_id = {shard.shard_id: shard for shard in shards}
    done: set[str] = set()
    ordered: list[Shard] = []

    def visit(shard: Shard, path: frozenset[str]) -> None:
        if shard.shard_id in done or shard.shard_id in path:
            return
        parent = by_id.get(shard.parent_shard_id or "")
        if parent is not None:
            visit(parent, path | {shard.shard_id})
        done.add(shard.shard_id)
        ordered.append(shard)

    for shard in shards:
        visit(shard, frozenset())
    return ordered


def ready(shards: Sequence[Shard], finished: Iterable[str]) -> list[Shard]:
    """Shards that may be read now: not finished, and whose parent is finished or gone."""
    listed = {shard.shard_id for shard in shards}
    closed = set(finished)
    return [shard for shard in in_order(shards) if shard.shard_id not in closed
            and (shard.parent_shard_id is None or shard.parent_shard_id in closed
                 or shard.parent_shard_id not in listed)]


@dataclass
class Cursor:
    """Where reading one shard stands; ``after`` is the last record applied (the checkpoint)."""

    stream_arn: str
    shard_id: str
    after: str | None = None
    finished: bool = False
    iterator: str | None = field(default=None, repr=False)
    trimmed: bool = False  # records aged out before they were read (set once, for the caller to report)

    @classmethod
    def resume(cls, stream_arn: str, shard_id: str, saved: Checkpoint | None) -> Cursor:
        if saved is None:
            return cls(stream_arn, shard_id)
        return cls(stream_arn, shard_id, saved.sequence, saved.finished)


@dataclass(frozen=True)
class Batch:
    records: list[dict[str, Any]]
    finished: bool  # the shard is closed and read to its end


def _code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _iterator(streams: Any, cursor: Cursor) -> str:
    kwargs: dict[str, Any] = {"StreamArn": cursor.stream_arn, "ShardId": cursor.shard_id}
    if cursor.after is None:
        kwargs["ShardIteratorType"] = "TRIM_HORIZON"
    else:
        kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=cursor.after)
    return str(retry.call(functools.partial(streams.get_shard_iterator, **kwargs))["ShardIterator"])


def read(streams: Any, cursor: Cursor, limit: int = 1000) -> Batch:
    """The next records of the cursor's shard (possibly none), advancing its iterator but not ``after``.

    The caller moves ``after`` once it has applied the records, so an error before then
    re-reads them from the same place.
    """
    for _ in range(3):  # an expired or trimmed position is fetched again, a bounded number of times
        try:
            if cursor.iterator is None:
                cursor.iterator = _iterator(streams, cursor)
            page = retry.call(functools.partial(streams.get_records, ShardIterator=cursor.iterator, Limit=limit))
        except botocore.exceptions.ClientError as exc:
            cursor.iterator = None
            if _code(exc) == "ExpiredIteratorException":
                continue
            if _code(exc) == "TrimmedDataAccessException" and cursor.after is not None:
                log.warning("DynamoDB stream %s shard %s: records after %s aged out before drorch read them; "
                            "restarting from the oldest record kept (run a backfill to bring the copies in step)",
                            cursor.stream_arn, cursor.shard_id, cursor.after)
                cursor.after, cursor.trimmed = None, True
                continue
            raise
        cursor.iterator = page.get("NextShardIterator")
        return Batch(list(page.get("Records", [])), finished=cursor.iterator is None)
    raise botocore.exceptions.ClientError(
        {"Error": {"Code": "ExpiredIteratorException", "Message": "iterator expired three times in a row"}},
        "GetRecords")
