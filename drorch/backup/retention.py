"""Retention: keep the newest base backup of each of the last N days and M ISO weeks, and the binlogs they need.

Only what no kept backup can use goes: base backups outside the daily and weekly
sets (all their objects), and binlog segments whose every event is older than the
oldest kept backup (less a margin for a replica's apply lag). A file's first
segment stays while any later segment of that file does: it holds the format
description every replay of that file needs. With no complete backup at all,
nothing is deleted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from drorch.backup import catalogue, layout
from drorch.backup.layout import Manifest
from drorch.backup.restore import BINLOG_MARGIN
from drorch.backup.store import Store
from drorch.config.schema import BackupRetention

ORPHAN_AGE = 86400.0  # a backup directory without a manifest this old was interrupted, not in progress


@dataclass(frozen=True)
class Pruned:
    kept: list[str]
    deleted_backups: list[str]
    deleted_segments: int
    deleted_objects: int
    binlogs_kept_from: float | None  # segments with events from this time on are kept
    dry_run: bool


def keep(manifests: list[Manifest], retention: BackupRetention) -> set[str]:
    """Ids of the newest backup of each of the newest ``daily`` days and ``weekly`` ISO weeks (UTC) that have one."""
    newest_first = sorted(manifests, key=lambda m: m.snapshot_time, reverse=True)
    kept: set[str] = set()
    for count, period in ((retention.daily, _day), (retention.weekly, _week)):
        seen: list[str] = []
        for manifest in newest_first:
            key = period(manifest.snapshot_time)
            if key not in seen:
                if len(seen) == count:
                    break
                seen.append(key)
                kept.add(manifest.id)
    return kept


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def _week(ts: float) -> str:
    year, week, _ = datetime.fromtimestamp(ts, UTC).isocalendar()
    return f"{year}-W{week:02d}"


def prune(store: Store, retention: BackupRetention, dry_run: bool = False, now: float | None = None) -> Pruned:
    manifests = catalogue.manifests(store)
    if not manifests:
        return Pruned([], [], 0, 0, None, dry_run)
    kept = keep(manifests, retention)
    oldest = min(m.snapshot_time for m in manifests if m.id in kept)
    objects, _ = store.listing(layout.BASE)
    complete = {m.id for m in manifests}
    moment = time.time() if now is None else now
    doomed_ids = sorted({m.id for m in manifests} - kept)
    doomed_ids += sorted({o.key.split("/")[1] for o in objects if o.key.split("/")[1] not in complete
                          and moment - o.modified > ORPHAN_AGE})
    doomed = [o.key for o in objects if o.key.split("/")[1] in doomed_ids]
    cutoff = oldest - BINLOG_MARGIN
    segments = _old_segments(catalogue.segments(store), cutoff)
    if not dry_run:
        store.delete(doomed + [s.key for s in segments])
    return Pruned(sorted(kept), doomed_ids, len(segments), len(doomed) + len(segments), cutoff, dry_run)


def _old_segments(found: list[layout.Segment], cutoff: float) -> list[layout.Segment]:
    """Segments entirely before ``cutoff``; a file's first stays while a later one of the file is kept."""
    doomed = []
    for run in catalogue.by_file(found).values():
        old = [s for s in run if s.last_event < cutoff]
        if len(old) < len(run):
            old = [s for s in old if s.start != 0]
        doomed += old
    return doomed
