"""Manual runs while ``drorch serve`` leads: serve hands the lease over, then takes it back.

On-call types ``drorch failover --to tokyo`` at 3 a.m. while the estate's ``serve``
holds the controller lease. Refusing (exit 4) would send them hunting for the
controller to stop it; instead the command leaves a hand-over request in the lease
store's notes and waits, bounded, for the lease. ``serve`` reads the request at the
start of every round (never in the middle of an action it is taking), releases the
lease and stands by while the request is fresh or its author holds the lease; then
it leads again. Only a ``serve`` yields: two manual runs still exclude each other.
"""

from __future__ import annotations

import json
import time

from drorch.errors import LeaseHeld
from drorch.state.lease import Keeper, LeaseStore

NOTE = "handover"
SERVE_MARK = "/serve-"  # in every serve controller's holder name
GRACE_SECONDS = 10.0  # beyond the lease TTL: one serve round, and the release reaching the store


def is_serve(holder: str) -> bool:
    return SERVE_MARK in holder


def request(store: LeaseStore, by: str) -> None:
    store.put_note(NOTE, json.dumps({"by": by, "at": time.time()}))


def withdraw(store: LeaseStore, by: str) -> None:
    """Remove the request if it is still ``by``'s (the serve then leads again at its next round)."""
    if wanted_by(store, 0.0, any_age=True) == by:
        store.put_note(NOTE, "{}")


def wanted_by(store: LeaseStore, ttl: float, any_age: bool = False) -> str | None:
    """Who asked for the lease, while the request counts: fresh (TTL and a grace), or its author holds the lease."""
    try:
        found = json.loads(store.get_note(NOTE) or "{}")
        by, at = str(found["by"]), float(found["at"])
    except (ValueError, KeyError, TypeError):
        return None
    if any_age or time.time() < at + ttl + GRACE_SECONDS:
        return by
    current = store.current()
    return by if current is not None and current.holder == by else None


def take_from_serve(store: LeaseStore, holder: str, ttl: float, refused: LeaseHeld) -> Keeper:
    """Ask the leading serve for the lease and wait for it (bounded); ``refused`` re-raised, explained, if not."""
    request(store, holder)
    deadline = time.monotonic() + ttl + GRACE_SECONDS
    while time.monotonic() < deadline:
        try:
            return Keeper(store, holder, ttl)
        except LeaseHeld as exc:
            refused = exc
            time.sleep(0.25)
    withdraw(store, holder)
    raise LeaseHeld(f"{refused}; `drorch serve` did not hand it over within {ttl + GRACE_SECONDS:g} s (it finishes "
                    "an action it is taking first: see `drorch runs list`)")
