"""The replication loop: every stream table's streams read in order, shipped to the other sites, checkpointed.

A round reads every ready shard of every stream (parents before children, batches for
about ``round_seconds`` each, so a change of direction is picked up quickly), applies each
batch to the targets and only then records the checkpoint: a replicator killed at any
point re-reads at most one batch per shard, and the conditional writes make the
replay harmless. Shards and tables are read side by side; inside a batch, records are
spread over lanes by item key, so one item's changes are always applied one after
another, in stream order, while different items go in parallel.

``Replicator(estate, checkpoints).run(stop)`` is what ``drorch replicate dynamodb``
and ``drorch serve`` run; ``round()`` is one pass, returning what it did.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from drorch.config.schema import DynamoDBTable
from drorch.errors import DrorchError
from drorch.providers.aws import streams
from drorch.providers.aws.streams import Shard
from drorch.providers.estate import Estate
from drorch.replication.dynamodb import apply, direction, shards, tables
from drorch.replication.dynamodb.stats import PairStats, RoundStats, TrackedStats, merge
from drorch.replication.dynamodb.tables import Copy
from drorch.state.checkpoints import Checkpoints
from drorch.state.lease import Keeper

Observer = Callable[[dict[str, Any], str, float], None]  # (record, target site, applied at): benches


@dataclass
class _Stream:
    """One site's stream of one table, with what to do with its records."""

    table: DynamoDBTable
    copy: Copy
    targets: tuple[Copy, ...]  # empty: tracked only

    @property
    def arn(self) -> str:
        assert self.copy.stream_arn is not None
        return self.copy.stream_arn


@dataclass
class _Outcome:
    """What reading one shard did in this round."""

    shipped: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    newer: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    echoes: int = 0
    read: int = 0
    local: int = 0
    lags: list[float] = field(default_factory=list)
    newest_lag: dict[str, float] = field(default_factory=dict)
    caught_up: bool = False
    finished: bool = False
    error: str | None = None
    trimmed: str | None = None


class Replicator:
    """Carries ``mode: stream`` tables (``only``: one of them) between their sites; see the module docstring."""

    def __init__(self, estate: Estate, checkpoints: Checkpoints, only: str | None = None, *,
                 batch_size: int = 500, track_batch_size: int = 250, round_seconds: float = 0.5, lanes: int = 8,
                 poll_seconds: float = 0.2, quiet_poll_seconds: float = 1.0, refresh_seconds: float = 10.0,
                 track_seconds: float = 5.0, observe: Observer | None = None) -> None:
        self.estate, self.checkpoints = estate, checkpoints
        self.tables = direction.stream_tables(estate.config, only)
        self.batch_size, self.track_batch_size, self.lanes = batch_size, track_batch_size, lanes
        self.round_seconds = round_seconds
        self.poll_seconds, self.refresh_seconds, self.observe = poll_seconds, refresh_seconds, observe
        self.track_seconds, self.quiet_poll_seconds = track_seconds, quiet_poll_seconds
        self._idle, self._tracked_at = False, 0.0
        self._copies: dict[str, tuple[float, tuple[str, ...], dict[str, Copy]]] = {}
        self._shards: dict[str, tuple[float, tuple[Shard, ...]]] = {}
        self._cursors: dict[tuple[str, str], shards.Cursor] = {}
        self._deletes = apply.PendingDeletes()
        self._readers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ddb-read")
        self._trackers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ddb-track")
        self._tracking: dict[tuple[str, str], tuple[_Stream, Future[_Outcome]]] = {}
        self._writers = ThreadPoolExecutor(max_workers=max(1, lanes), thread_name_prefix="ddb-write")

    def __enter__(self) -> Replicator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._trackers.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        self._writers.shutdown(wait=True)

    def check(self) -> None:
        """Raise InvalidInput for the first table that cannot be replicated now (see ``tables.check``)."""
        for table in self.tables:
            self._streams(table, force=True)

    def _streams(self, table: DynamoDBTable, force: bool = False) -> list[_Stream]:
        route = direction.route(self.estate.config, self.checkpoints, table)
        shipped = tuple(route.ships)
        cached = self._copies.get(table.name)
        if force or cached is None or cached[1] != shipped or time.monotonic() - cached[0] > self.refresh_seconds:
            cached = (time.monotonic(), shipped, tables.check(self.estate, table, shipped))
            self._copies[table.name] = cached
        copies = cached[2]
        found = [_Stream(table, copies[site], tuple(copies[t] for t in targets))
                 for site, targets in route.ships.items()]
        found += [_Stream(table, copies[site], ()) for site in route.tracked if copies[site].stream_arn is not None]
        return found

    def _ready(self, stream: _Stream) -> list[shards.Cursor]:
        cached = self._shards.get(stream.arn)
        if cached is None or time.monotonic() - cached[0] > self.refresh_seconds:
            client = self.estate.aws(stream.copy.site, "dynamodbstreams")
            cached = (time.monotonic(), streams.describe(client, stream.arn).shards)
            self._shards[stream.arn] = cached
            saved = self.checkpoints.shards(stream.arn)
            for shard in cached[1]:
                if (stream.arn, shard.shard_id) not in self._cursors:
                    self._cursors[(stream.arn, shard.shard_id)] = shards.Cursor.resume(
                        stream.arn, shard.shard_id, saved.get(shard.shard_id))
        listed = cached[1]
        finished = [s.shard_id for s in listed if self._cursors[(stream.arn, s.shard_id)].finished]
        return [self._cursors[(stream.arn, s.shard_id)] for s in shards.ready(listed, finished)]

    def round(self) -> RoundStats:
        """One pass over every table: ship what is available, a bounded amount per shard.

        Tracked streams are read (one batch per shard, in the background: a round never waits
        for them) once a second when the previous round found nothing left to ship, else every
        ``track_seconds``: under load, shipping comes first, and tracking late only costs a few
        skipped echoes should the direction turn meanwhile.
        """
        started = time.monotonic()
        since = started - self._tracked_at
        track = (self._idle and since >= 1.0) or since >= self.track_seconds
        errors: list[str] = []
        work: list[tuple[_Stream, shards.Cursor]] = []
        tracked: list[tuple[_Stream, shards.Cursor]] = []
        for table in self.tables:
            try:
                for stream in self._streams(table):
                    if stream.targets or track:
                        (work if stream.targets else tracked).extend((stream, c) for c in self._ready(stream))
            except Exception as exc:  # one table's trouble never stops the others
                self._copies.pop(table.name, None)
                errors.append(f"{table.name}: {_describe(exc)}")
        # A shard tracked until now and shipped from this round on: its last tracked read finishes first.
        done = [self._settle(key) for key in [(c.stream_arn, c.shard_id) for _, c in work] if key in self._tracking]
        for stream, cursor in tracked:
            if (cursor.stream_arn, cursor.shard_id) not in self._tracking:
                self._tracking[(cursor.stream_arn, cursor.shard_id)] = (
                    stream, self._trackers.submit(self._read_shard, stream, cursor))
        self._tracked_at = started if tracked else self._tracked_at
        shipped = list(zip([s for s, _ in work], self._readers.map(lambda item: self._read_shard(*item), work),
                           strict=True))
        done += [self._settle(key) for key, (_, job) in list(self._tracking.items()) if job.done()]
        stats = self._stats(shipped + done, errors)
        self._idle = stats.caught_up
        stats.seconds = time.monotonic() - started
        return stats

    def _settle(self, key: tuple[str, str]) -> tuple[_Stream, _Outcome]:
        stream, job = self._tracking.pop(key)
        return stream, job.result()

    def _read_shard(self, stream: _Stream, cursor: shards.Cursor) -> _Outcome:
        outcome = _Outcome()
        client = self.estate.aws(stream.copy.site, "dynamodbstreams")
        limit = self.batch_size if stream.targets else self.track_batch_size
        budget = time.monotonic() + self.round_seconds
        try:  # a tracked stream: one batch; a shipped one: until caught up or its time is up (others wait)
            while not self._read_batch(client, stream, cursor, limit, outcome) and stream.targets \
                    and time.monotonic() < budget:
                pass
        except Exception as exc:  # re-read from the checkpoint next round
            cursor.iterator = None
            outcome.error = f"{stream.table.name}: {stream.copy.where}, shard {cursor.shard_id}: {_describe(exc)}"
        return outcome

    def _read_batch(self, client: Any, stream: _Stream, cursor: shards.Cursor, limit: int, outcome: _Outcome) -> bool:
        """Read, apply and checkpoint one batch; True when the shard holds nothing more now (or is finished)."""
        batch = shards.read(client, cursor, limit)
        if cursor.trimmed:
            cursor.trimmed = False
            outcome.trimmed = f"{stream.copy.where}: shard {cursor.shard_id}"
        self._handle(stream, batch.records, outcome)
        if batch.records or batch.finished:
            last = batch.records[-1]["dynamodb"]["SequenceNumber"] if batch.records else cursor.after
            self.checkpoints.save(cursor.stream_arn, cursor.shard_id, last, batch.finished)
            cursor.after, cursor.finished = last, batch.finished
        if batch.finished:
            outcome.finished = True
            self._shards.pop(stream.arn, None)  # its children are readable now: list them again
            return True
        outcome.caught_up = len(batch.records) < limit  # a short batch: all there was
        return outcome.caught_up

    def _handle(self, stream: _Stream, records: list[dict[str, Any]], outcome: _Outcome) -> None:
        outcome.read += len(records)
        where = f"{stream.copy.site}/{stream.copy.name}"
        fresh = []
        for record in records:
            if record["eventName"] == "REMOVE":
                echo = self._deletes.consume(where, apply.item_key(apply.record_keys(record)))
            else:
                echo = apply.is_echo(record, stream.arn)
            if echo:
                outcome.echoes += 1
            else:
                fresh.append(record)
        if not stream.targets:
            outcome.local += len(fresh)
            return
        lanes: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for record in fresh:
            lanes[zlib.crc32(apply.item_key(apply.record_keys(record)).encode()) % max(1, self.lanes)].append(record)
        jobs = [self._writers.submit(self._apply_lane, stream, target, lane)
                for target in stream.targets for lane in lanes.values()]
        wait(jobs)  # every lane ends before a failure is reported: no write of this batch still in flight
        newest: dict[str, list[float]] = defaultdict(list)
        for job in jobs:
            target, shipped, newer, lags = job.result()
            outcome.shipped[target] += shipped
            outcome.newer[target] += newer
            outcome.lags += lags
            newest[target] += lags
        outcome.newest_lag.update({target: min(lags) for target, lags in newest.items() if lags})

    def _apply_lane(self, stream: _Stream, target: Copy, records: list[dict[str, Any]]
                    ) -> tuple[str, int, int, list[float]]:
        ddb = self.estate.aws(target.site, "dynamodb")
        where = f"{target.site}/{target.name}"
        shipped = newer = 0
        lags: list[float] = []
        for record in records:
            key = apply.item_key(apply.record_keys(record))
            removing = record["eventName"] == "REMOVE"
            if removing:
                self._deletes.expect(where, key)  # before the delete: its REMOVE may be read at once
            done = apply.apply(ddb, target.name, record, stream.arn)
            if removing and not done.removed:
                self._deletes.expect(where, key, -1)
            if done.outcome == "newer":
                newer += 1
                continue
            shipped += 1
            now = time.time()
            created = record["dynamodb"].get("ApproximateCreationDateTime")
            if created is not None:
                lags.append(max(0.0, now - created.timestamp()))
            if self.observe is not None:
                self.observe(record, target.site, now)
        return target.site, shipped, newer, lags

    def _stats(self, read: list[tuple[_Stream, _Outcome]], errors: list[str]) -> RoundStats:
        pairs: dict[tuple[str, str, str], PairStats] = {}
        tracked: dict[tuple[str, str], TrackedStats] = {}
        stats = RoundStats(errors=errors)
        behind: set[tuple[str, str]] = set()
        shipping_failed = bool(errors)  # so far: tables that could not be read at all
        for stream, outcome in read:
            table, site = stream.table.name, stream.copy.site
            if outcome.error:
                errors.append(outcome.error)
                shipping_failed = shipping_failed or bool(stream.targets)
            if outcome.trimmed:
                stats.trimmed.append(outcome.trimmed)
            if not outcome.caught_up and stream.targets:
                behind.add((table, site))
            stats.lags += outcome.lags
            if not stream.targets:
                seen = tracked.setdefault((table, site), TrackedStats(table, site))
                seen.read, seen.local_writes = seen.read + outcome.read, seen.local_writes + outcome.local
            for target in stream.targets:
                pair = pairs.setdefault((table, site, target.site), PairStats(table, site, target.site))
                pair.shipped += outcome.shipped[target.site]
                pair.newer += outcome.newer[target.site]
                pair.echoes += outcome.echoes
                if target.site in outcome.newest_lag:
                    pair.lag_seconds = outcome.newest_lag[target.site]
        for key, pair in pairs.items():
            pair.caught_up = (key[0], key[1]) not in behind
            if pair.caught_up and pair.lag_seconds is None:
                pair.lag_seconds = 0.0
        stats.pairs, stats.tracked = list(pairs.values()), list(tracked.values())
        stats.caught_up = not shipping_failed and not behind  # a tracked stream's trouble does not hold it
        return stats

    def run(self, stop: threading.Event, *, until_caught_up: bool = False, max_seconds: float | None = None,
            lease: Keeper | None = None, on_round: Callable[[RoundStats], None] | None = None) -> RoundStats:
        """Rounds until ``stop`` is set (or, with ``until_caught_up``, everything available is shipped, or
        ``max_seconds`` pass); returns the rounds' totals. Idle between rounds only when caught up:
        a quarter of ``poll_seconds`` while changes flow, ``poll_seconds`` when none came, stretched
        to ``quiet_poll_seconds`` after a second or so of nothing to ship (each GetRecords costs a
        call of the stream's per-shard budget, and moto keeps every iterator).

        With a ``lease``, it is checked (at most once a second) before a round: LeaseLost once it is gone.
        """
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        total = RoundStats()
        checked, quiet = 0.0, 0
        while not stop.is_set():
            if lease is not None and time.monotonic() - checked >= 1.0:
                lease.check()
                checked = time.monotonic()
            stats = self.round()
            total = merge(total, stats)
            if on_round is not None:
                on_round(stats)
            if until_caught_up and stats.caught_up:
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
            quiet = quiet + 1 if stats.caught_up and not stats.shipped else 0
            if stats.errors:
                stop.wait(max(self.poll_seconds, 1.0))
            elif stats.caught_up and stats.shipped:  # changes are flowing: the next ones are a moment away
                stop.wait(self.poll_seconds / 4)
            elif stats.caught_up:
                stop.wait(min(self.quiet_poll_seconds, self.poll_seconds * 2 ** min(10, max(0, quiet - 5))))
        return total


def _describe(exc: BaseException) -> str:
    """An error for operators: drorch's own message, or the AWS error code and message (never credentials)."""
    if isinstance(exc, DrorchError):
        return str(exc)
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error", {})
        return f"{error.get('Code', type(exc).__name__)}: {error.get('Message', '')}".strip()
    return f"{type(exc).__name__}: {exc}"
