"""Point-in-time restore: the newest base backup before the target, then the shipped transactions up to it.

Everything is decided and checked before the target server changes: the base
backup (its SHA-256), every binlog segment needed (SHA-256, byte ranges without
holes), and the transactions between the backup's GTID position and the target
(every sequence number present: a missing one is a gap, named). A time before the
oldest backup or after the newest shipped event is refused as invalid. Binlog
event times have whole seconds, so ``--to-time T`` replays the transactions
stamped before T's second and none after T; ``--to-gtid`` is exact.
"""

from __future__ import annotations

import heapq
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drorch.backup import catalogue, events, target
from drorch.backup.binlogs import read_state
from drorch.backup.catalogue import BinlogGap, Shipped
from drorch.backup.events import Group
from drorch.backup.layout import Manifest
from drorch.backup.store import Store, gunzip_chunks, read_chunks
from drorch.errors import InvalidInput, RefusedForSafety
from drorch.providers.estate import Estate
from drorch.providers.mysql.client import MySQLClient
from drorch.providers.mysql.gtid import GtidPosition

BINLOG_MARGIN = 3600.0  # binlog events a replica applied after its snapshot may carry earlier primary times

Say = Callable[[str], None]


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_time(text: str) -> float:
    """ISO 8601 (naive means UTC) or seconds since the epoch."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"--to-time {text}: give an ISO 8601 time such as 2026-11-22T18:25:50Z (UTC when no "
                           "offset is given) or seconds since the epoch") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


@dataclass(frozen=True)
class Goal:
    time: float | None = None
    gtid: GtidPosition | None = None

    def __str__(self) -> str:
        return iso(self.time) if self.time is not None else str(self.gtid)


@dataclass
class Plan:
    base: Manifest
    transactions: list[Group]
    shipped: Shipped
    position: str  # where the restored server will be

    @property
    def last_event(self) -> int | None:
        return max((g.timestamp for g in self.transactions), default=None)


def choose_base(manifests: list[Manifest], goal: Goal, store: Store) -> Manifest:
    if not manifests:
        raise RefusedForSafety(f"there is no base backup in {store.where('base/')}: take one with "
                               "`drorch backup mysql` first")
    if goal.time is not None:
        before = [m for m in manifests if m.snapshot_time <= goal.time]
        if not before:
            oldest = manifests[0]
            raise InvalidInput(f"{iso(goal.time)} is before the oldest backup {oldest.id} (its snapshot: "
                               f"{iso(oldest.snapshot_time)}); nothing was restored")
        return before[-1]
    assert goal.gtid is not None
    below = [m for m in manifests if goal.gtid.covers(GtidPosition.parse(m.gtid_position))]
    if not below:
        raise InvalidInput(f"GTID {goal.gtid} is before the oldest backup {manifests[0].id} (at "
                           f"{manifests[0].gtid_position}); nothing was restored")
    return max(below, key=lambda m: (GtidPosition.parse(m.gtid_position).sort_key(), m.snapshot_time))


def plan(store: Store, goal: Goal) -> Plan:
    """Choose the base backup and the transactions to replay, reading and checking every segment needed."""
    base = choose_base(catalogue.manifests(store), goal, store)
    state = read_state(store)
    through = state.shipped_through()
    if goal.time is not None and goal.time > base.snapshot_time and (through is None or goal.time > through):
        newest = "nothing has been shipped yet" if through is None else f"the newest shipped event is {iso(through)}"
        raise InvalidInput(f"{iso(goal.time)} is after the newest shipped binlog event ({newest}): choose an "
                           "earlier time, or wait for `backup ship-binlogs` to catch up; nothing was restored")
    until = None if goal.time is None else goal.time + 1
    heads = {s.stream: (s.file, s.offset) for s in state.streams.values()}
    shipped = catalogue.read_transactions(store, catalogue.segments(store), base.snapshot_time - BINLOG_MARGIN, until,
                                          heads)
    chosen, position = _select(shipped, GtidPosition.parse(base.gtid_position), goal, store)
    return Plan(base, chosen, shipped, position)


def _select(shipped: Shipped, start: GtidPosition, goal: Goal, store: Store) -> tuple[list[Group], str]:
    """The transactions after ``start`` up to the goal, per domain in sequence; a missing one is a gap."""
    reached = {domain: (server, seq) for domain, server, seq in start.domains}
    domains = sorted({d for d, _s in shipped.groups} | set(reached) | ({d for d, _s, _q in goal.gtid.domains}
                                                                       if goal.gtid else set()))
    per_domain: list[list[Group]] = []
    for domain in domains:
        taken: list[Group] = []
        seq = reached.get(domain, (0, 0))[1] + 1
        limit = goal.gtid.seq(domain) if goal.gtid is not None else None
        while (group := shipped.groups.get((domain, seq))) is not None:
            if limit is not None and seq > limit:
                break
            if goal.time is not None and group.timestamp >= int(goal.time):
                break
            taken.append(group)
            reached[domain] = (group.server, seq)
            seq += 1
        _check_gap(shipped, domain, seq, limit, goal, store)
        per_domain.append(taken)
    chosen = list(heapq.merge(*per_domain, key=lambda g: g.timestamp))
    position = ",".join(f"{d}-{s}-{q}" for d, (s, q) in sorted(reached.items()) if q > 0)
    return chosen, position


def _check_gap(shipped: Shipped, domain: int, missing: int, limit: int | None, goal: Goal, store: Store) -> None:
    """``missing`` is the first sequence number not found: is a later wanted transaction shipped (a gap)?"""
    later = sorted(seq for (d, seq), group in shipped.groups.items() if d == domain and seq > missing
                   and (limit is None or seq <= limit) and (goal.time is None or group.timestamp < int(goal.time)))
    if later:
        after = shipped.origin[(domain, later[0])]
        raise BinlogGap(f"binlog gap: transactions {domain}-*-{missing} to {domain}-*-{later[0] - 1} are not in "
                        f"the shipped binlogs (the next shipped one, {shipped.groups[(domain, later[0])].gtid}, is in "
                        f"stream {after[0]} file {after[1]} under {store.where('binlogs/')}); nothing was restored")
    if limit is not None and missing <= limit:
        raise InvalidInput(f"GTID {domain}-*-{limit} is after the newest shipped transaction of domain {domain} "
                           f"({domain}-*-{missing - 1}); nothing was restored")


@dataclass(frozen=True)
class Restored:
    target: str
    base: str
    base_gtid: str
    goal: str
    position: str
    transactions: int
    last_event: str | None
    dump_bytes: int
    binlog_bytes: int
    seconds: float
    load_seconds: float
    overwrote: list[str]

    @property
    def mb_per_second(self) -> float:
        return round(self.dump_bytes / 1e6 / self.load_seconds, 2) if self.load_seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "mb_per_second": self.mb_per_second}


def restore(estate: Estate, target_name: str, goal: Goal, overwrite: bool, say: Say | None = None,
            store: Store | None = None, db: MySQLClient | None = None) -> Restored:
    """Restore into ``target_name`` (a site or HOST:PORT; or ``db`` itself) the state at ``goal``."""
    tell = say or (lambda _message: None)
    started = time.monotonic()
    store = store or Store(estate.config)
    store.check()
    site, db = (None, db) if db is not None else target.resolve(estate, target_name)
    overwrote = target.refuse_unsafe(estate, site, db, overwrite)
    tell(f"planning the restore to {goal}")
    chosen = plan(store, goal)
    tell(f"base backup {chosen.base.id} ({chosen.base.gtid_position}), then {len(chosen.transactions)} "
         f"transaction(s) up to {chosen.position}")
    with tempfile.TemporaryDirectory(prefix="drorch-restore-") as tmp:
        here = Path(tmp)
        dump = here / "dump.sql.gz"
        store.download(chosen.base.object_key, dump, chosen.base.sha256)
        files = _replay_files(chosen, here)
        target.refuse_unsafe(estate, site, db, overwrite)  # again: the download may have taken a while
        tell(f"emptying {db.address.name}")
        target.empty(db)
        load_started = time.monotonic()
        with open(dump, "rb") as handle:
            loaded = target.load(db, gunzip_chunks(read_chunks(handle)), f"backup {chosen.base.id}",
                                 lambda n, s: tell(f"  loaded {n / 1e6:.1f} MB in {s:.1f} s"))
        load_seconds = time.monotonic() - load_started
        tell(f"replaying {len(chosen.transactions)} transaction(s)")
        target.replay(db, files, None)
    db.execute(*db.flavor.restored_position_sql(chosen.position))
    last = chosen.last_event
    return Restored(target.address_of(db) if site is None else site, chosen.base.id, chosen.base.gtid_position,
                    str(goal), chosen.position, len(chosen.transactions), iso(last) if last is not None else None,
                    loaded, chosen.shipped.bytes_read, round(time.monotonic() - started, 3), round(load_seconds, 3),
                    overwrote)


def _replay_files(chosen: Plan, here: Path) -> list[Path]:
    """The chosen transactions as binlog files, one per run of transactions from one source file."""
    files: list[Path] = []
    run: list[Group] = []
    run_origin: tuple[str, str, bytes] | None = None
    for group in [*chosen.transactions, None]:
        origin = chosen.shipped.origin[(group.domain, group.seq)] if group is not None else None
        if run and (group is None or origin != run_origin):
            assert run_origin is not None
            path = here / f"replay-{len(files):05d}.bin"
            path.write_bytes(events.binlog_file(run_origin[2], run))
            files.append(path)
            run = []
        if group is not None:
            run.append(group)
            run_origin = origin
    return files
