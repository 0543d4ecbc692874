"""What one replication round did, for the CLI, serve's metrics and the benchmarks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class PairStats:
    """Changes of ``table`` shipped from ``source``'s stream to ``target`` in one round.

    ``newer``: the target already held that change or a later one (a replay), nothing written;
    ``echoes``: records of the source stream the replicator itself wrote there, not sent back;
    ``lag_seconds``: age of the newest shipped change when it landed (0 when caught up with
    nothing new, None when nothing could be shipped).
    """

    table: str
    source: str
    target: str
    shipped: int = 0
    newer: int = 0
    echoes: int = 0
    lag_seconds: float | None = None
    caught_up: bool = False

    def to_json(self) -> dict[str, Any]:
        lag = None if self.lag_seconds is None else round(self.lag_seconds, 3)
        return {"table": self.table, "source": self.source, "target": self.target, "shipped": self.shipped,
                "newer": self.newer, "echoes": self.echoes, "lag_seconds": lag, "caught_up": self.caught_up}


@dataclass
class TrackedStats:
    """A stream read without shipping (a ``follow-primary`` table's non-source site).

    ``local_writes``: changes made there by something other than the replicator; they are not
    carried anywhere while that site is not the source, so a non-zero count deserves a look.
    """

    table: str
    site: str
    read: int = 0
    local_writes: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"table": self.table, "site": self.site, "read": self.read, "local_writes": self.local_writes}


@dataclass
class RoundStats:
    pairs: list[PairStats] = field(default_factory=list)
    tracked: list[TrackedStats] = field(default_factory=list)
    caught_up: bool = False  # every shipped stream read to its end, without errors
    errors: list[str] = field(default_factory=list)
    trimmed: list[str] = field(default_factory=list)  # shards whose unread records aged out: backfill
    seconds: float = 0.0
    lags: list[float] = field(default_factory=list, repr=False)  # per shipped change, for percentiles

    @property
    def shipped(self) -> int:
        return sum(pair.shipped for pair in self.pairs)

    def to_json(self) -> dict[str, Any]:
        return {"caught_up": self.caught_up, "shipped": self.shipped, "seconds": round(self.seconds, 3),
                "pairs": [p.to_json() for p in self.pairs], "tracked": [t.to_json() for t in self.tracked],
                "errors": self.errors, "trimmed": self.trimmed}


def merge(total: RoundStats, one: RoundStats) -> RoundStats:
    """Add ``one`` round to a running ``total`` (same pairs summed; the latest lag and caught-up state win)."""
    pairs = {(p.table, p.source, p.target): p for p in total.pairs}
    for pair in one.pairs:
        known = pairs.get((pair.table, pair.source, pair.target))
        if known is None:
            pairs[(pair.table, pair.source, pair.target)] = PairStats(**vars(pair))
            continue
        known.shipped += pair.shipped
        known.newer += pair.newer
        known.echoes += pair.echoes
        known.lag_seconds = pair.lag_seconds if pair.lag_seconds is not None else known.lag_seconds
        known.caught_up = pair.caught_up
    tracked = {(t.table, t.site): t for t in total.tracked}
    for seen in one.tracked:
        was = tracked.setdefault((seen.table, seen.site), TrackedStats(seen.table, seen.site))
        was.read += seen.read
        was.local_writes += seen.local_writes
    return RoundStats(list(pairs.values()), list(tracked.values()), one.caught_up, one.errors,
                      total.trimmed + one.trimmed, total.seconds + one.seconds, total.lags + one.lags)
