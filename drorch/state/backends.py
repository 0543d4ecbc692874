"""Choosing the state backends the config names: the journal, and the controller lease."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from drorch.config.schema import Config
from drorch.errors import LeaseHeld
from drorch.state import handover
from drorch.state.journal import Journal
from drorch.state.lease import Keeper, LeaseStore, this_controller
from drorch.state.sqlite import SQLiteJournal


def open_journal(config: Config) -> Journal:
    """The journal of ``config.state`` (paths relative to the config file)."""
    return SQLiteJournal(config.resolve_path(config.state.path))


def open_lease(config: Config) -> LeaseStore:
    """The lease store of ``config.state.lease``: the SQLite state file, or etcd."""
    lease = config.state.lease
    key = lease.key or f"/drorch/{config.service}/leader"
    if lease.backend == "dynamodb" and lease.dynamodb is not None:
        from drorch.providers.aws import session
        from drorch.state.lease_dynamodb import DynamoDBLease

        config_dir = config.source_path.parent if config.source_path else None
        return DynamoDBLease(session.client(lease.dynamodb.provider, "dynamodb", config_dir), lease.dynamodb.table, key)
    if lease.backend == "etcd":
        from drorch.state.lease_etcd import EtcdLease

        return EtcdLease(lease.etcd_endpoints, key)
    from drorch.state.lease_sqlite import SQLiteLease

    open_journal(config)  # creates the state file (0600) and its directory
    return SQLiteLease(config.resolve_path(config.state.path))


@contextmanager
def holding_lease(config: Config, holder: str | None = None) -> Iterator[Keeper]:
    """Hold the controller lease for the block (LeaseHeld, exit 4, when another controller has it).

    When a ``drorch serve`` holds it, it is asked to hand it over (see ``handover``) and the block
    waits for it, bounded; serve leads again when the block ends.
    """
    store, me, ttl = open_lease(config), holder or this_controller(), config.state.lease.ttl_seconds
    try:
        keeper = Keeper(store, me, ttl)
    except LeaseHeld as refused:
        current = store.current()
        if current is None or not handover.is_serve(current.holder) or handover.is_serve(me):
            raise
        keeper = handover.take_from_serve(store, me, ttl, refused)
    try:
        yield keeper
    finally:
        keeper.close()
        handover.withdraw(store, me)
