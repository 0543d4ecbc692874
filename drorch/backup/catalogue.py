"""What the store holds: base backups (by their manifests) and shipped binlog segments, read and checked.

Segments are fetched per binlog file as contiguous byte ranges: a hole between two
objects of one file is a gap in the shipped binlogs, reported with the missing
bytes and the objects on either side, before anything is restored.
"""

from __future__ import annotations

import itertools
import zlib
from collections import defaultdict
from dataclasses import dataclass

from drorch.backup import events, layout
from drorch.backup.events import Group
from drorch.backup.layout import Manifest, Segment
from drorch.backup.store import ChecksumMismatch, Store
from drorch.errors import RefusedForSafety


class BinlogGap(RefusedForSafety):
    """Shipped binlogs are missing between two objects: replay past the gap would lose transactions silently."""


def manifests(store: Store) -> list[Manifest]:
    """Every complete base backup, oldest first (a backup without its manifest never finished)."""
    objects, _ = store.listing(layout.BASE)
    keys = sorted(o.key for o in objects if o.key.endswith("/" + layout.MANIFEST_NAME))
    found = []
    for key in keys:
        doc = store.get_json(key)
        if doc is not None:
            found.append(Manifest.from_json(doc))
    return sorted(found, key=lambda m: m.snapshot_time)


def segments(store: Store) -> list[Segment]:
    objects, _ = store.listing(layout.BINLOGS)
    return [s for o in objects if (s := layout.parse_segment(o.key)) is not None]


def by_file(found: list[Segment]) -> dict[tuple[str, str], list[Segment]]:
    """Segments grouped per (stream, file), in byte order."""
    files: dict[tuple[str, str], list[Segment]] = defaultdict(list)
    for segment in found:
        files[(segment.stream, segment.file)].append(segment)
    return {key: sorted(value, key=lambda s: s.start) for key, value in sorted(files.items())}


def check_contiguous(store: Store, run: list[Segment]) -> None:
    """Each segment starts where the one before it ended."""
    for before, after in itertools.pairwise(run):
        if after.start != before.end:
            raise BinlogGap(f"binlog gap in stream {before.stream}, file {before.file}: bytes {before.end}-"
                            f"{after.start} are missing between {store.where(before.key)} and "
                            f"{store.where(after.key)}; nothing was restored")


def fetch(store: Store, segment: Segment) -> bytes:
    """A segment's binlog bytes, its SHA-256 checked."""
    packed = store.get_bytes(segment.key)
    try:
        return zlib.decompress(packed, 31)
    except zlib.error as exc:
        raise ChecksumMismatch(f"{store.where(segment.key)} does not decompress ({exc})") from None


@dataclass
class Shipped:
    """Transactions read from the shipped binlogs, with where each came from (for replay and for messages)."""

    groups: dict[tuple[int, int], Group]  # (domain, seq) -> the transaction
    origin: dict[tuple[int, int], tuple[str, str, bytes]]  # (domain, seq) -> (stream, file, format description)
    bytes_read: int


def check_heads(store: Store, files: dict[tuple[str, str], list[Segment]], heads: dict[str, tuple[str, int]]) -> None:
    """The shipper's recorded head of each stream (file, bytes shipped) is really in the store."""
    for stream, (name, offset) in heads.items():
        run = files.get((stream, name))
        end = run[-1].end if run else 0
        if end < offset:
            last = store.where(run[-1].key) if run else "no object of that file"
            raise BinlogGap(f"binlog gap in stream {stream}, file {name}: the shipper recorded bytes up to {offset} "
                            f"as shipped, but the store ends at {end} (last: {last}); nothing was restored")


def read_transactions(store: Store, found: list[Segment], since: float, until: float | None,
                      heads: dict[str, tuple[str, int]] | None = None) -> Shipped:
    """Transactions of the segments whose events may fall in [since, until], every file's range checked whole, and
    each stream's recorded head (``heads``: stream -> (file, offset)) checked present.

    Later streams win where two streams hold one GTID (a failover's new primary is the history that went on)."""
    groups: dict[tuple[int, int], Group] = {}
    origin: dict[tuple[int, int], tuple[str, str, bytes]] = {}
    total = 0
    files = by_file(found)
    check_heads(store, files, heads or {})
    for (stream, name), run in sorted(files.items(), key=lambda item: (_stream_time(item[0][0]), item[0][1])):
        chosen = [s for s in run if s.last_event >= since and (until is None or s.first_event <= until)]
        if not chosen:
            continue
        first, last = run.index(chosen[0]), run.index(chosen[-1])
        chosen = run[first:last + 1]
        check_contiguous(store, chosen)
        if run[0].start != 0:
            raise BinlogGap(f"binlog gap in stream {stream}, file {name}: its first bytes (0-{run[0].start}) are not "
                            f"in the store, so its events cannot be read; nothing was restored")
        head = fetch(store, run[0]) if chosen[0] is not run[0] else b""
        data = b"".join(fetch(store, s) for s in chosen)
        total += len(data)
        description = events.description(head or data)
        for group in events.transactions(data, whole_file=chosen[0].start == 0):
            if group.complete:
                groups[(group.domain, group.seq)] = group
                origin[(group.domain, group.seq)] = (stream, name, description)
    return Shipped(groups, origin, total)


def _stream_time(stream: str) -> str:
    """Streams are named SITE-YYYYmmddTHHMMSSZ: their start time orders them."""
    return stream.rsplit("-", 1)[-1]
