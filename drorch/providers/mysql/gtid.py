"""MariaDB GTID positions (``domain-server-seq`` lists) and their comparison.

A position holds the last sequence number seen per replication domain; one
position covers another when it is at least as far in every domain.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GtidPosition:
    """Per-domain (server_id, seq) of the last transaction, as MariaDB reports it."""

    domains: tuple[tuple[int, int, int], ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> GtidPosition:
        if not text or not text.strip():
            return cls()
        items: list[tuple[int, int, int]] = []
        for part in text.replace("\n", "").split(","):
            domain, server, seq = (int(value) for value in part.strip().split("-"))
            items.append((domain, server, seq))
        return cls(tuple(sorted(items)))

    def seq(self, domain: int) -> int:
        return next((seq for dom, _server, seq in self.domains if dom == domain), 0)

    def covers(self, other: GtidPosition) -> bool:
        """True when every transaction in ``other`` is included in this position."""
        return all(self.seq(domain) >= seq for domain, _server, seq in other.domains)

    def missing_from(self, other: GtidPosition) -> int:
        """How many transactions of ``other`` this position has not got (per-domain seq gaps)."""
        return sum(max(0, seq - self.seq(domain)) for domain, _server, seq in other.domains)

    def sort_key(self) -> tuple[int, ...]:
        """Orders positions by total progress; used to pick the most advanced replica."""
        return (sum(seq for _d, _s, seq in self.domains),)

    def __str__(self) -> str:
        return ",".join(f"{d}-{s}-{q}" for d, s, q in self.domains)


def unreplicated_pairs(old_state: str | None, new_state: str | None) -> list[str]:
    """GTIDs in MariaDB binlog state ``old_state`` that ``new_state`` lacks, per (domain, server) pair.

    Positions compare sequence numbers per domain only, so a dead primary's last
    transaction 0-1-105 looks covered by the new primary's own 0-2-110. The binlog
    *state* keeps the last seq of every (domain, server) pair, which exposes it:
    the new primary has 0-1 only up to 104.
    """
    have: dict[tuple[int, int], int] = {}
    for domain, server, seq in GtidPosition.parse(new_state).domains:
        have[(domain, server)] = max(seq, have.get((domain, server), 0))
    return [f"{domain}-{server}-{seq} (the other side has {domain}-{server} up to {have.get((domain, server), 0)})"
            for domain, server, seq in GtidPosition.parse(old_state).domains if seq > have.get((domain, server), 0)]


def count_gtid_set(text: str | None) -> int:
    """Number of transactions in a MySQL GTID set such as ``uuid:1-5:7,uuid2:3``."""
    total = 0
    for member in (text or "").replace("\n", "").split(","):
        if not member.strip():
            continue
        for interval in member.strip().split(":")[1:]:
            first, _, last = interval.partition("-")
            total += int(last or first) - int(first) + 1
    return total


@dataclass(frozen=True)
class Errant:
    """Transactions one server holds that another never had.

    ``gtids`` are for people: MariaDB's newest GTID of each (domain, server) pair the other
    side lacks, MySQL's exact ``uuid:interval`` sets. ``count`` is exact for MySQL and a lower
    bound for MariaDB, whose binlog state keeps only the last GTID of each pair.
    """

    gtids: tuple[str, ...] = ()
    count: int = 0

    def __bool__(self) -> bool:
        return bool(self.gtids)

    def __str__(self) -> str:
        return ", ".join(self.gtids)


def errant(history: str | None, other: str | None, ignore_origin: str = "") -> Errant:
    """What ``history`` holds beyond ``other`` (both MariaDB binlog states, or both MySQL GTID sets).

    ``ignore_origin`` (a server_id or server_uuid) leaves out that server's own transactions: when
    the two were read a moment apart, the newest writes of the primary read first are a race, not
    errant transactions.
    """
    if ":" in (history or "") or ":" in (other or ""):
        return _errant_sets(history or "", other or "", ignore_origin)
    mine, theirs = GtidPosition.parse(history), GtidPosition.parse(other)
    have = {(domain, server): seq for domain, server, seq in theirs.domains}
    gtids, count = [], 0
    for domain in sorted({d for d, _s, _q in mine.domains}):
        pairs = [(s, q) for d, s, q in mine.domains if d == domain and str(s) != ignore_origin]
        uncovered = [(s, q) for s, q in pairs if q > have.get((domain, s), 0)]
        if not uncovered:
            continue
        # seqs above the newest the other side has in the domain are all missing there
        reach = max((q for d, _s, q in theirs.domains if d == domain), default=0)
        count += max(0, max(q for _s, q in uncovered) - reach) + sum(1 for _s, q in uncovered if q <= reach)
        gtids += [f"{domain}-{server}-{seq}" for server, seq in uncovered]
    return Errant(tuple(gtids), count)


def _parse_set(text: str) -> dict[str, list[tuple[int, int]]]:
    """``uuid[:tag]:1-5:7,...`` -> {"uuid[:tag]": [(1, 5), (7, 7)]} (tags: MySQL 8.3+)."""
    found: dict[str, list[tuple[int, int]]] = {}
    for member in text.replace("\n", "").split(","):
        parts = [part.strip() for part in member.strip().split(":") if part.strip()]
        if not parts:
            continue
        key = parts[0].lower()
        for part in parts[1:]:
            if not part[0].isdigit():
                key = f"{parts[0].lower()}:{part}"
                continue
            first, _, last = part.partition("-")
            found.setdefault(key, []).append((int(first), int(last or first)))
    return found


def _subtract(ranges: list[tuple[int, int]], minus: list[tuple[int, int]]) -> list[tuple[int, int]]:
    result = []
    for first, last in sorted(ranges):
        start = first
        for cut_first, cut_last in sorted(minus):
            if cut_last < start or cut_first > last:
                continue
            if cut_first > start:
                result.append((start, cut_first - 1))
            start = max(start, cut_last + 1)
        if start <= last:
            result.append((start, last))
    return result


def _errant_sets(history: str, other: str, ignore_origin: str) -> Errant:
    mine, theirs = _parse_set(history), _parse_set(other)
    gtids, count = [], 0
    for key, ranges in sorted(mine.items()):
        if key.split(":")[0] == ignore_origin.lower():
            continue
        left = _subtract(ranges, theirs.get(key, []))
        if left:
            gtids.append(key + ":" + ":".join(f"{a}-{b}" if b > a else str(a) for a, b in left))
            count += sum(b - a + 1 for a, b in left)
    return Errant(tuple(gtids), count)


def merge_history(state: str | None, position: str | None) -> str:
    """The binlog state for a server loaded from a dump taken at ``position`` (MariaDB).

    ``state`` is the source's binlog state read before the dump: every (domain, server) pair it names
    is at or below the position, so the dump holds it. Keeping those pairs (not only the position)
    lets later errant checks compare this server with peers that remember older writers. Within a
    domain the position comes last: MariaDB takes the last entry as the domain's current GTID.
    """
    if ":" in (state or "") + (position or ""):
        return position or ""
    at = {domain: (server, seq) for domain, server, seq in GtidPosition.parse(position).domains}
    entries = [(d, s, q) for d, s, q in GtidPosition.parse(state).domains
               if d not in at or (s != at[d][0] and q <= at[d][1])]
    entries += [(d, s, q) for d, (s, q) in at.items()]
    last = sorted(entries, key=lambda e: (e[0], e[0] in at and e[1] == at[e[0]][0]))
    return ",".join(f"{d}-{s}-{q}" for d, s, q in last)
