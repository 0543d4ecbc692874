"""Backups inside ``serve``: the lease holder ships binlogs continuously and runs the scheduled backups.

Two threads, so that a base backup or a verification (minutes, for a large
database) never stops the binlog shipping that bounds the backup tier's RPO.
A standby controller ships nothing and idles until it leads. Failures are kept
(``last_error``) and tried again; they never stop ``serve``. The figures serve
exports (``drorch_backup_rpo_seconds``, ``drorch_backup_last_success_timestamp``)
are read from the object store, the backups' own memory, by the shipping thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from drorch.providers.estate import Estate
from drorch.state.lease import Keeper

Figures = Callable[[float | None, float | None], None]  # (backup RPO seconds, last base backup's end)
FIGURES_EVERY = 15.0
SCHEDULE_EVERY = 20.0


class BackupLoop:
    def __init__(self, estate: Estate, lease: Callable[[], Keeper | None], on_figures: Figures) -> None:
        self._estate, self._lease, self._on_figures = estate, lease, on_figures
        self._stop = threading.Event()
        self.enabled = estate.config.backups is not None
        self._threads = [threading.Thread(target=self._ship, name="binlog-shipping", daemon=True),
                         threading.Thread(target=self._schedule, name="backup-schedule", daemon=True)]
        self.last_error: str | None = None

    @property
    def started(self) -> bool:
        return not self.enabled or self._threads[0].is_alive()

    def start(self) -> None:
        if self.enabled and not self._threads[0].is_alive():
            for thread in self._threads:
                thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=30)

    def _ship(self) -> None:
        from drorch.backup.binlogs import Shipper
        from drorch.backup.status import last_success

        shipper: Shipper | None = None
        figures_at = 0.0
        try:
            while not self._stop.is_set():
                if self._lease() is None:
                    if shipper is not None:  # another controller ships now: start afresh from the store if we lead
                        shipper.close()
                        shipper = None
                    self._stop.wait(1.0)
                    continue
                try:
                    shipper = shipper or Shipper(self._estate)
                    shipper.step()
                    if time.monotonic() - figures_at >= FIGURES_EVERY:
                        figures_at = time.monotonic()
                        self._on_figures(shipper.rpo_seconds(), last_success(self._estate.config, shipper.store))
                    self.last_error = None
                except Exception as exc:  # the store or a database hiccup: kept, and tried again next round
                    self.last_error = f"binlog shipping: {type(exc).__name__}: {exc}"
                interval = shipper.settings.interval_seconds if shipper is not None else 5.0
                self._stop.wait(interval)
        finally:
            if shipper is not None:
                shipper.close()

    def _schedule(self) -> None:
        from drorch.backup.schedule import BackupScheduler

        scheduler: BackupScheduler | None = None
        while not self._stop.wait(SCHEDULE_EVERY):
            if self._lease() is None:
                continue
            try:
                scheduler = scheduler or BackupScheduler(self._estate, since=time.time())
                scheduler.run_due(time.time())
                self.last_error = scheduler.last_error or self.last_error
            except Exception as exc:  # as above: never fatal to serve
                self.last_error = f"scheduled backup: {type(exc).__name__}: {exc}"
