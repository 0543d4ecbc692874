"""Copy a source table into its targets with a parallel Scan, before following the stream.

A stream keeps 24 hours: a table older than that, a new target, or a replicator
that fell behind the trim horizon needs the items themselves copied. Copies are
stamped with the source stream and the lowest position there is, so a backfill
never replaces a change the stream already carried (or carries while the scan
runs); the stream, followed afterwards, brings every copy up to date. For a
``both`` table only the site's own items (not copies from elsewhere) are sent.
"""

from __future__ import annotations

import functools
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from drorch.providers import retry
from drorch.providers.estate import Estate
from drorch.replication.dynamodb import apply, direction, tables
from drorch.replication.dynamodb.tables import Copy
from drorch.state.checkpoints import Checkpoints


@dataclass
class BackfillStats:
    table: str
    source: str
    target: str
    scanned: int = 0
    copied: int = 0
    newer: int = 0  # the target already had the streamed change: left alone
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"table": self.table, "source": self.source, "target": self.target, "scanned": self.scanned,
                "copied": self.copied, "newer": self.newer, "seconds": round(self.seconds, 3)}


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


def _copy_segment(estate: Estate, source: Copy, targets: tuple[Copy, ...], own_only: bool, segment: int,
                  total: int) -> list[BackfillStats]:
    assert source.stream_arn is not None
    found = [BackfillStats("", source.site, target.site) for target in targets]
    for item in scan_segment(estate.aws(source.site, "dynamodb"), source.name, segment, total):
        if own_only and apply.SRC in item:
            continue
        for stats, target in zip(found, targets, strict=True):
            stats.scanned += 1
            written = apply.put_copy(estate.aws(target.site, "dynamodb"), target.name, item, source.stream_arn,
                                     apply.BACKFILL_SEQUENCE)
            stats.copied, stats.newer = stats.copied + written, stats.newer + (not written)
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
                    total.scanned, total.copied = total.scanned + one.scanned, total.copied + one.copied
                    total.newer += one.newer
            for total in totals:
                total.seconds = time.monotonic() - started
            results += totals
    return results
