"""Copy a source table into its targets with a parallel Scan, before following the stream.

A stream keeps 24 hours: a table older than that, a new target, or a replicator
that fell behind the trim horizon needs the items themselves copied. Per item and
target, never overwriting something newer:

* no copy there, or one not written from this source: the item is written stamped
  with the lowest position there is, so any change the stream carries replaces it;
* a copy from this source with the same content: left alone;
* a copy from this source that differs (an application changed it in place, keeping
  drorch's stamp): the target is read first, then the source, and the source's item is
  written stamped just above the target's position, on condition that the target's
  stamp has not moved meanwhile. Any later change of the source has a higher position
  than the target's was, so the stream still carries it over the repair.

Items only the target holds are left for ``verify`` to report. For a ``both`` table
only the site's own items (not copies from elsewhere) are sent.
"""

from __future__ import annotations

import functools
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import botocore.exceptions

from drorch.providers import retry
from drorch.providers.estate import Estate
from drorch.replication.dynamodb import apply, direction, tables
from drorch.replication.dynamodb.tables import Copy
from drorch.state.checkpoints import Checkpoints

Outcome = Literal["copied", "repaired", "same", "newer"]
_REPAIRED = "r"  # "…123" < "…123r" < "…124": a repair sorts after the position it repaired, before the next


@dataclass
class BackfillStats:
    table: str
    source: str
    target: str
    scanned: int = 0
    copied: int = 0
    repaired: int = 0
    same: int = 0
    newer: int = 0  # the target moved on while we looked: left alone
    seconds: float = 0.0

    def count(self, outcome: Outcome) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)

    def to_json(self) -> dict[str, Any]:
        return {"table": self.table, "source": self.source, "target": self.target, "scanned": self.scanned,
                "copied": self.copied, "repaired": self.repaired, "same": self.same, "newer": self.newer,
                "seconds": round(self.seconds, 3)}


def scan_segment(ddb: Any, table: str, segment: int, total: int) -> Any:
    """Every item of one parallel-scan segment, page by page (strongly consistent)."""
    start: dict[str, Any] | None = None
    while True:
        kwargs: dict[str, Any] = {"TableName": table, "Segment": segment, "TotalSegments": total,
                                  "ConsistentRead": True, **({"ExclusiveStartKey": start} if start else {})}
        page = retry.call(functools.partial(ddb.scan, **kwargs))
        yield from page.get("Items", [])
        start = page.get("LastEvaluatedKey")
        if not start:
            return


def _get(ddb: Any, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
    found = retry.call(functools.partial(ddb.get_item, TableName=table, Key=key, ConsistentRead=True))
    item: dict[str, Any] | None = found.get("Item")
    return item


def _visible(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in (apply.SRC, apply.SEQ)}


def _same(one: dict[str, Any], other: dict[str, Any]) -> bool:
    return bool(apply.canonical(_visible(one)) == apply.canonical(_visible(other)))


def sync_item(estate: Estate, source: Copy, target: Copy, item: dict[str, Any]) -> Outcome:
    """Bring ``target``'s copy of the scanned ``item`` in step (see the module docstring)."""
    assert source.stream_arn is not None
    ddb = estate.aws(target.site, "dynamodb")
    key = {name: item[name] for name in source.key_names}
    there = _get(ddb, target.name, key)
    if there is None or there.get(apply.SRC, {}).get("S") != source.stream_arn:
        written = apply.put_copy(ddb, target.name, item, source.stream_arn, apply.BACKFILL_SEQUENCE)
        return "copied" if written else "newer"
    if _same(there, item):
        return "same"
    now = _get(estate.aws(source.site, "dynamodb"), source.name, key)  # read after the target: see above
    if now is None:
        return "newer"  # deleted since the scan: the stream carries the delete
    position = there[apply.SEQ]["S"]
    stamped = {**_visible(now), apply.SRC: {"S": source.stream_arn}, apply.SEQ: {"S": position + _REPAIRED}}
    try:
        retry.call(lambda: ddb.put_item(
            TableName=target.name, Item=stamped, ConditionExpression="#src = :src AND #seq = :seq",
            ExpressionAttributeNames={"#src": apply.SRC, "#seq": apply.SEQ},
            ExpressionAttributeValues={":src": {"S": source.stream_arn}, ":seq": {"S": position}}))
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return "newer"
        raise
    return "repaired"


def _copy_segment(estate: Estate, source: Copy, targets: tuple[Copy, ...], own_only: bool, segment: int,
                  total: int) -> list[BackfillStats]:
    found = [BackfillStats("", source.site, target.site) for target in targets]
    for item in scan_segment(estate.aws(source.site, "dynamodb"), source.name, segment, total):
        if own_only and apply.SRC in item:
            continue
        for stats, target in zip(found, targets, strict=True):
            stats.scanned += 1
            stats.count(sync_item(estate, source, target, item))
    return found


def backfill(estate: Estate, checkpoints: Checkpoints, only: str | None = None,
             segments: int = 8) -> list[BackfillStats]:
    """Copy every stream table (or ``only``) from each shipping site to its targets; InvalidInput before any
    write when a copy is missing, keyed differently, or a source stream is off."""
    plans = []
    for table in direction.stream_tables(estate.config, only):
        route = direction.route(estate.config, checkpoints, table)
        copies = tables.check(estate, table, route.ships)
        plans += [(table.name, copies[site], tuple(copies[t] for t in targets), table.direction == "both")
                  for site, targets in route.ships.items()]
    results: list[BackfillStats] = []
    with ThreadPoolExecutor(max_workers=segments, thread_name_prefix="ddb-backfill") as pool:
        for name, source, targets, own_only in plans:
            started = time.monotonic()
            parts = pool.map(lambda n, s=source, t=targets, o=own_only: _copy_segment(estate, s, t, o, n, segments),
                             range(segments))
            totals = [BackfillStats(name, source.site, target.site) for target in targets]
            for part in parts:
                for total, one in zip(totals, part, strict=True):
                    for field in ("scanned", "copied", "repaired", "same", "newer"):
                        setattr(total, field, getattr(total, field) + getattr(one, field))
            for total in totals:
                total.seconds = time.monotonic() - started
            results += totals
    return results
