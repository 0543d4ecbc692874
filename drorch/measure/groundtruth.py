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
    log_end: float

    @property
    def recovered(self) -> bool:
        """False when writes were still failing when the log ended."""
        return all(w.end is not None for w in self.outages)

    @property
    def longest_outage_seconds(self) -> float:
        """The longest outage; one that never ended counts until the end of the log (at least that long)."""
        return max(((w.end if w.end is not None else self.log_end) - w.start for w in self.outages), default=0.0)

    def to_json(self) -> dict[str, Any]:
        return {
            "attempted": self.attempted, "acknowledged": self.acknowledged, "failed": self.failed,
            "outage_seconds": round(self.longest_outage_seconds, 3), "recovered": self.recovered,
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
    """Windows from a failed write (its send time) to the first acknowledgement of a write sent after it.

    Writes run concurrently: each failure's window ends at the earliest ack among
    later-sent writes (a slow success does not stretch it), and overlapping
    windows merge, since the client saw one outage with a few lucky writes inside.
    """
    ordered = sorted(records, key=lambda r: r.sent)
    earliest_ack_after: list[float | None] = [None] * (len(ordered) + 1)
    for index in range(len(ordered) - 1, -1, -1):
        later = earliest_ack_after[index + 1]
        record = ordered[index]
        own = record.done if record.ok else None
        earliest_ack_after[index] = own if later is None else (later if own is None else min(own, later))
    merged: list[OutageWindow] = []
    for index, record in enumerate(ordered):
        if record.ok:
            continue
        window = OutageWindow(record.sent, earliest_ack_after[index + 1])
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
    log_end = max((r.done for r in records), default=0.0)
    return GroundTruth(len(records), len(acked), len(records) - len(acked), tuple(outages(records)), lost, sites,
                       log_end)
