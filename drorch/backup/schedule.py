"""Base backups and verifications on the cron schedules of ``backups.schedules``, for ``drorch serve``.

The store is the memory, as the journal is for drills: the last base backup is the
newest manifest and the last verification the newest ``verified.json``, so a
restarted or newly elected controller neither repeats a run nor skips one it
missed while nobody led (it runs it once, late). A run that fails is tried once
per due time, never in a loop.
"""

from __future__ import annotations

from collections.abc import Callable

from drorch.backup import status
from drorch.backup.store import Store, backups_of
from drorch.drill.schedule import next_after
from drorch.errors import DrorchError
from drorch.providers.estate import Estate


def due(schedule: str | None, last: float | None, since: float, now: float) -> bool:
    """Whether the cron ``schedule`` fired after ``last`` (or after ``since`` when it never ran) and by ``now``."""
    if schedule is None:
        return False
    return next_after(schedule, last if last is not None else since) <= now


class BackupScheduler:
    """``run_due`` runs what is due: the base backup first, then the verification of the newest backup.

    Call it from the lease holder's loop (``serve``), between rounds or in a thread; it blocks while a run runs."""

    def __init__(self, estate: Estate, since: float, store: Store | None = None) -> None:
        self.estate, self.since = estate, since
        self.store = store or Store(estate.config)
        self._attempted: dict[str, float] = {}
        self.last_error: str | None = None

    def last_runs(self) -> dict[str, float | None]:
        newest = status.newest_manifest(self.store)
        verified = status.last_verified(self.store, newest) if newest is not None else None
        return {"base": newest.finished_at if newest is not None else None,
                "verify": float(verified["at"]) if verified else None}

    def run_due(self, now: float) -> list[str]:
        """Run every due kind ("base", "verify"); returns those that ran successfully."""
        from drorch.backup import base, verify

        schedules = backups_of(self.estate.config).schedules
        last = self.last_runs()
        ran = []
        runs: list[tuple[str, str | None, Callable[[], object]]] = [
            ("base", schedules.base, lambda: base.take(self.estate, store=self.store)),
            ("verify", schedules.verify, lambda: verify.verify(self.estate, store=self.store))]
        for kind, schedule, action in runs:
            if not due(schedule, last[kind], self.since, now) or schedule is None:
                continue
            previous = last[kind]
            fired = next_after(schedule, previous if previous is not None else self.since)
            if self._attempted.get(kind, -1.0) >= fired:
                continue
            self._attempted[kind] = now
            try:
                action()
            except DrorchError as exc:
                self.last_error = f"backup {kind}: {exc}"
                continue
            ran.append(kind)
        return ran
