"""DynamoDB stream replication inside ``serve``: run by the lease holder only, never fatal to the loop.

Only the leading controller ships changes (two replicators would be safe, their
writes being conditional, but would double the stream reads); a standby
controller's loop idles until it leads. A table that cannot be replicated (its
stream turned off, a target missing) is reported in every round's stats and
metrics and tried again later: the rest of ``serve`` carries on. On shutdown the
loop ships what is pending for a few seconds, so the newest probe items and
changes are not left for the next controller. Each time this controller takes the
lead, the ``follow-primary`` tables are first pointed at the one writable database:
the direction a dead leader recorded in its own state file is not lost with it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from drorch.errors import DrorchError
from drorch.providers.estate import Estate
from drorch.replication.dynamodb.direction import SourceChange, follow_writable, stream_tables
from drorch.replication.dynamodb.replicator import Replicator
from drorch.replication.dynamodb.stats import RoundStats
from drorch.replication.roles import writable_besides
from drorch.state.checkpoints import open_checkpoints
from drorch.state.lease import Keeper, LeaseLost

DRAIN_SECONDS = 5.0
RETRY_SECONDS = 10.0


class ReplicationLoop:
    def __init__(self, estate: Estate, lease: Callable[[], Keeper | None],
                 on_round: Callable[[RoundStats], None] | None = None) -> None:
        """``lease``: the controller lease while this controller holds it, else None (asked again every second);
        ``on_round``: called with every round's stats (serve updates its metrics there)."""
        self._estate, self._lease, self._on_round = estate, lease, on_round
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dynamodb-replication", daemon=True)
        self.enabled = bool(stream_tables(estate.config))
        self.last: RoundStats | None = None
        self.error: str | None = None  # why replication stopped last (a bad table, a lost lease), until it runs
        self.followed: list[SourceChange] = []  # the tables turned round when this controller last took the lead

    @property
    def started(self) -> bool:
        return self._thread.is_alive() or not self.enabled

    def start(self) -> None:
        if self.enabled and not self._thread.is_alive():
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=DRAIN_SECONDS + 15)

    def _record(self, stats: RoundStats) -> None:
        self.last = stats
        if self._on_round is not None:
            self._on_round(stats)

    def _run(self) -> None:
        replicator: Replicator | None = None
        try:
            while not self._stop.is_set():
                lease = self._lease()
                if lease is None:
                    self._stop.wait(1.0)
                    continue
                replicator = replicator or self._build()
                if replicator is None:
                    continue
                try:
                    self._follow_the_primary()
                    replicator.run(self._stop, lease=lease, on_round=self._record)
                except LeaseLost as exc:
                    self.error = str(exc)
            lease = self._lease()
            if replicator is not None and lease is not None:
                replicator.run(threading.Event(), until_caught_up=True, max_seconds=DRAIN_SECONDS, lease=lease)
        except DrorchError as exc:  # the lease lost while draining: the next leader ships the rest
            self.error = str(exc)
        finally:
            if replicator is not None:
                replicator.close()

    def _follow_the_primary(self) -> None:
        """On taking the lead, point the follow-primary tables at the writable database (see ``follow_writable``)."""
        config = self._estate.config
        self.followed = follow_writable(config, open_checkpoints(config), writable_besides(self._estate, None))

    def _build(self) -> Replicator | None:
        replicator = Replicator(self._estate, open_checkpoints(self._estate.config))
        try:
            replicator.check()
        except DrorchError as exc:
            replicator.close()
            self.error = str(exc)
            self._stop.wait(RETRY_SECONDS)
            return None
        self.error = None
        return replicator
