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
