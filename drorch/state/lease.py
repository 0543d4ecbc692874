"""The controller lease: one holder at a time, with a fencing token that only grows.

Like Patroni's leader key, the lease lives in a store every controller reaches
(SQLite for controllers on one host, etcd for several) and expires unless its
holder renews it, so a dead controller cannot block the others for long. Each
grant carries a fencing token, larger than every earlier one: steps record it in
the journal, so two runs can always be ordered and a stale holder recognised.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from drorch.errors import DrorchError, LeaseHeld


@dataclass(frozen=True)
class Grant:
    holder: str
    token: int
    expires_at: float  # wall clock


class LeaseStore(Protocol):
    """Where the lease lives; also the controllers' shared notes (what one leader must tell the next).

    A note is a small value under a name, kept beside the lease: the journal is each controller's own
    (a file per host or pod), the lease store is what they all reach.
    """

    def acquire(self, holder: str, ttl: float) -> Grant: ...  # raises LeaseHeld naming the holder
    def renew(self, grant: Grant, ttl: float) -> Grant: ...  # raises LeaseLost when it is no longer ours
    def release(self, grant: Grant) -> None: ...
    def current(self) -> Grant | None: ...
    def put_note(self, name: str, value: str) -> None: ...
    def get_note(self, name: str) -> str | None: ...


class LeaseLost(DrorchError):
    """The lease expired or was taken while a run held it: the run stops at the next step boundary."""

    exit_code = 4


def this_controller() -> str:
    """A holder name people can find: host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def held_elsewhere(current: Grant) -> LeaseHeld:
    until = time.strftime("%H:%M:%S", time.localtime(current.expires_at))
    return LeaseHeld(f"the controller lease is held by {current.holder} (fencing token {current.token}) until "
                     f"{until}; wait for it, or stop that controller")


class Keeper:
    """Holds a grant and renews it in the background at a third of the TTL; ``check`` fails once it is lost."""

    def __init__(self, store: LeaseStore, holder: str, ttl: float) -> None:
        self.store, self.ttl = store, ttl
        self.grant = store.acquire(holder, ttl)
        self._lost: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="lease-keeper", daemon=True)
        self._thread.start()

    @property
    def token(self) -> int:
        return self.grant.token

    def check(self) -> None:
        """Raise LeaseLost unless the store confirms the lease is still ours (renewing it on the way).

        Called at every step boundary: a controller that was stalled past its TTL while another took
        over learns it here, before it changes anything else. When the store does not answer, the
        grant's own expiry is the bound.
        """
        self._renew_once()
        if self._lost is None and time.time() >= self.grant.expires_at:
            self._lost = f"it expired at {time.strftime('%H:%M:%S', time.localtime(self.grant.expires_at))}"
        if self._lost is not None:
            raise LeaseLost(f"this controller lost the lease ({self._lost}): stopping before the next step; "
                            "`drorch resume RUN_ID` continues once it holds the lease again")

    def close(self) -> None:
        """Stop renewing and release the lease; for good: whoever still holds this keeper gets LeaseLost."""
        self._stop.set()
        self._thread.join(timeout=5)
        with self._lock:
            if self._lost is None:
                with contextlib.suppress(DrorchError):  # not released: it expires on its own
                    self.store.release(self.grant)
                self._lost = "it was released"

    def _renew_once(self) -> None:
        with self._lock:
            if self._lost is not None:
                return
            try:
                self.grant = self.store.renew(self.grant, self.ttl)
            except LeaseLost as exc:
                self._lost = str(exc)
            except Exception:  # the store did not answer: the grant's expiry still bounds how long we trust it
                return

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl / 3) and self._lost is None:
            self._renew_once()
