"""Compare a table's copies, read-only: item counts and a checksum per key segment, then a few differing keys.

Each copy is read with a parallel Scan. Items are bucketed into segments by a hash
of their key computed here (the same item lands in the same segment in every
region, whatever the service does with its own scan segments), and each segment's
checksum is the sum of its items' digests, so the order items arrive in does not
matter. drorch's own ``_drorch_*`` marks are left out: they differ by design.
Only segments that differ are read a second time, to name up to a few keys.

A copy that is still receiving changes can differ for a moment: compare when the
replicator has caught up, or compare twice.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from drorch.providers.estate import Estate
from drorch.replication.dynamodb import direction, tables
from drorch.replication.dynamodb.apply import canonical, item_key
from drorch.replication.dynamodb.backfill import scan_segment
from drorch.replication.dynamodb.tables import Copy
from drorch.state.checkpoints import Checkpoints

_MASK = (1 << 64) - 1
_MAX_KEYS = 100_000  # per side, when naming the keys of differing segments


@dataclass
class Comparison:
    """One target copy against the source; ``examples``: up to a few keys that differ, and how."""

    table: str
    source: str
    target: str
    source_items: int = 0
    target_items: int = 0
    segments: int = 0
    differing_segments: list[int] = field(default_factory=list)
    examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def same(self) -> bool:
        return not self.differing_segments and self.source_items == self.target_items

    def to_json(self) -> dict[str, Any]:
        return {"table": self.table, "source": self.source, "target": self.target, "same": self.same,
                "source_items": self.source_items, "target_items": self.target_items, "segments": self.segments,
                "differing_segments": self.differing_segments, "examples": self.examples}


def _digest(item: dict[str, Any]) -> int:
    visible = {k: v for k, v in item.items() if not k.startswith("_drorch_")}
    text = json.dumps(canonical(visible), sort_keys=True, separators=(",", ":"))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def _key(item: dict[str, Any], names: tuple[str, ...]) -> str:
    return item_key({name: item[name] for name in names})


def _segment(key: str, segments: int) -> int:
    return zlib.crc32(key.encode()) % segments


def _summarise(estate: Estate, copy: Copy, segments: int, workers: int) -> tuple[list[int], list[int]]:
    """Per segment: item count and checksum."""
    counts, sums = [0] * segments, [0] * segments

    def one(part: int) -> tuple[list[int], list[int]]:
        c, s = [0] * segments, [0] * segments
        for item in scan_segment(estate.aws(copy.site, "dynamodb"), copy.name, part, workers):
            n = _segment(_key(item, copy.key_names), segments)
            c[n] += 1
            s[n] = (s[n] + _digest(item)) & _MASK
        return c, s

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ddb-verify") as pool:
        for c, s in pool.map(one, range(workers)):
            counts = [a + b for a, b in zip(counts, c, strict=True)]
            sums = [(a + b) & _MASK for a, b in zip(sums, s, strict=True)]
    return counts, sums


def _keys_in(estate: Estate, copy: Copy, wanted: set[int], segments: int, workers: int) -> dict[str, int]:
    """Key -> digest of the items in the ``wanted`` segments (a bounded number)."""
    found: dict[str, int] = {}
    for part in range(workers):
        for item in scan_segment(estate.aws(copy.site, "dynamodb"), copy.name, part, workers):
            key = _key(item, copy.key_names)
            if _segment(key, segments) in wanted and len(found) < _MAX_KEYS:
                found[key] = _digest(item)
    return found


def _examples(estate: Estate, source: Copy, target: Copy, wanted: set[int], segments: int, workers: int,
              limit: int) -> list[dict[str, Any]]:
    theirs = _keys_in(estate, source, wanted, segments, workers)
    ours = _keys_in(estate, target, wanted, segments, workers)
    found = []
    for key in sorted(set(theirs) | set(ours)):
        if theirs.get(key) == ours.get(key):
            continue
        problem = "missing" if key not in ours else "extra" if key not in theirs else "different"
        found.append({"key": json.loads(key), "problem": problem})
        if len(found) >= limit:
            break
    return found


def compare(estate: Estate, name: str, source: Copy, target: Copy, segments: int = 16, workers: int = 8,
            examples: int = 5) -> Comparison:
    mine, theirs = _summarise(estate, source, segments, workers), _summarise(estate, target, segments, workers)
    differing = [n for n in range(segments) if (mine[0][n], mine[1][n]) != (theirs[0][n], theirs[1][n])]
    result = Comparison(name, source.site, target.site, sum(mine[0]), sum(theirs[0]), segments, differing)
    if differing:
        result.examples = _examples(estate, source, target, set(differing), segments, workers, examples)
    return result


def verify(estate: Estate, checkpoints: Checkpoints, only: str | None = None, segments: int = 16,
           workers: int = 8) -> list[Comparison]:
    """Every stream table (or ``only``): its source against each other copy (``both``: the first site's)."""
    results = []
    for table in direction.stream_tables(estate.config, only):
        route = direction.route(estate.config, checkpoints, table)
        source = next(iter(route.ships)) if table.direction == "follow-primary" else next(iter(table.sites))
        copies = tables.check(estate, table, ())  # same key schema everywhere, or nothing to compare
        results += [compare(estate, table.name, copies[source], copies[site], segments, workers)
                    for site in table.sites if site != source]
    return results
