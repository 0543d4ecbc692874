"""What the backup tier looks like now, cheaply: for ``backup list`` and for ``serve``'s metrics.

``backup_rpo_seconds`` is the age of the newest moment up to which the primary's
transactions are all in the store (the newest shipped event, or the last time the
shipper held everything the primary had written); ``last_success`` is when the
newest complete base backup finished. Both read a couple of objects, never the
binlogs themselves.
"""

from __future__ import annotations

import time
from typing import Any

from drorch.backup import catalogue, layout
from drorch.backup.binlogs import read_state
from drorch.backup.layout import Manifest
from drorch.backup.store import Store
from drorch.config.schema import Config


def newest_manifest(store: Store) -> Manifest | None:
    """The newest complete base backup (one listing and one read)."""
    objects, _ = store.listing(layout.BASE)
    keys = sorted(o.key for o in objects if o.key.endswith("/" + layout.MANIFEST_NAME))
    for key in reversed(keys):
        doc = store.get_json(key)
        if doc is not None:
            return Manifest.from_json(doc)
    return None


def last_success(config: Config, store: Store | None = None) -> float | None:
    """When the newest complete base backup finished (UTC seconds), or None.

    ``drorch_backup_last_success_timestamp``."""
    found = newest_manifest(store or Store(config))
    return found.finished_at if found is not None else None


def backup_rpo_seconds(config: Config, store: Store | None = None, now: float | None = None) -> float | None:
    """Seconds of the primary's writes not yet in the store, or None before anything was shipped:
    ``drorch_backup_rpo_seconds``."""
    through = read_state(store or Store(config)).shipped_through()
    if through is None:
        return None
    return max(0.0, (time.time() if now is None else now) - through)


def last_verified(store: Store, manifest: Manifest) -> dict[str, Any] | None:
    return store.get_json(layout.verified_key(manifest.id))


def overview(config: Config, store: Store | None = None) -> dict[str, Any]:
    """Every base backup with its verification, and the shipping state (``backup list``)."""
    store = store or Store(config)
    backups = []
    for manifest in reversed(catalogue.manifests(store)):
        verified = last_verified(store, manifest)
        backups.append({"id": manifest.id, "site": manifest.site, "snapshot_time": manifest.snapshot_time,
                        "gtid_position": manifest.gtid_position, "size": manifest.size, "raw_size": manifest.raw_size,
                        "sha256": manifest.sha256, "tables": len(manifest.tables),
                        "verified": None if verified is None else {"at": verified.get("at"),
                                                                  "ok": verified.get("ok")}})
    state = read_state(store)
    segments = catalogue.segments(store)
    return {"store": store.where(""), "backups": backups,
            "binlogs": {"current": state.current, "streams": {s: v.to_json() for s, v in state.streams.items()},
                        "segments": len(segments), "newest_event": state.newest_event,
                        "caught_up_at": state.caught_up_at, "shipped_through": state.shipped_through(),
                        "last_error": state.last_error},
            "rpo_seconds": backup_rpo_seconds(config, store)}
