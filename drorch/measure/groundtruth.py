"""Ground truth from a client's own log of writes.

The load generator records every write it attempted: when it was sent, whether
it was acknowledged, and by which site. From that log alone we can tell the
outage a client saw (from the first failed write to the next acknowledged one)
and, checked against the final primary, which acknowledged writes were lost.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class WriteRecord:
    seq: int
    client_ref: str
    sent: float
    done: float
    ok: bool
    site: str | None
    error: str | None


@dataclass(frozen=True)
class OutageWindow:
    start: float
    end: float | None  # None: no acknowledged write after it

    @property
    def seconds(self) -> float | None:
        return None if self.end is None else self.end - self.start


@dataclass(frozen=True)
class GroundTruth:
    attempted: int
    acknowledged: int
    failed: int
    outages: tuple[OutageWindow, ...]
    lost_refs: tuple[str, ...]
    sites: dict[str, int]

    @property
    def longest_outage_seconds(self) -> float:
        return max((w.seconds or 0.0 for w in self.outages), default=0.0)

    def to_json(self) -> dict[str, Any]:
        return {
            "attempted": self.attempted, "acknowledged": self.acknowledged, "failed": self.failed,
            "outage_seconds": round(self.longest_outage_seconds, 3),
            "outages": [{"start": w.start, "end": w.end, "seconds": w.seconds} for w in self.outages],
            "lost_acknowledged_writes": len(self.lost_refs), "lost_refs": list(self.lost_refs[:20]),
            "acknowledged_by_site": self.sites,
        }


def read_log(path: Path) -> list[WriteRecord]:
    records = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                data = json.loads(line)
                records.append(WriteRecord(data["seq"], data["client_ref"], data["sent"], data["done"], data["ok"],
                                           data.get("site"), data.get("error")))
    return sorted(records, key=lambda r: r.seq)


def outages(records: Iterable[WriteRecord]) -> list[OutageWindow]:
    """Windows from a failed write (sent time) to the next acknowledged one (ack time).

    Writes run concurrently, so windows that overlap are merged: the client saw
    one outage, with a few lucky writes inside it.
    """
    raw: list[OutageWindow] = []
    start: float | None = None
    for record in sorted(records, key=lambda r: r.sent):
        if not record.ok and start is None:
            start = record.sent
        elif record.ok and start is not None:
            raw.append(OutageWindow(start, record.done))
            start = None
    if start is not None:
        raw.append(OutageWindow(start, None))
    merged: list[OutageWindow] = []
    for window in raw:
        last = merged[-1] if merged else None
        if last is not None and (last.end is None or window.start <= last.end):
            end = None if last.end is None or window.end is None else max(last.end, window.end)
            merged[-1] = OutageWindow(last.start, end)
        else:
            merged.append(window)
    return merged


def analyse(records: list[WriteRecord], present_refs: set[str]) -> GroundTruth:
    """Summarise a write log; ``present_refs`` are the client refs found on the final primary."""
    acked = [r for r in records if r.ok]
    sites: dict[str, int] = {}
    for r in acked:
        sites[r.site or "?"] = sites.get(r.site or "?", 0) + 1
    lost = tuple(r.client_ref for r in acked if r.client_ref not in present_refs)
    return GroundTruth(len(records), len(acked), len(records) - len(acked), tuple(outages(records)), lost, sites)
