"""The controller lease on every backend (SQLite file, real etcd, DynamoDB on a real moto server):
one holder, growing tokens, expiry, races."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from drorch.errors import InvalidInput, LeaseHeld, OperationFailed
from drorch.lab.control import Lab
from drorch.lab.ports import free_port
from drorch.state.lease import Keeper, LeaseLost, LeaseStore
from drorch.state.lease_dynamodb import DynamoDBLease
from drorch.state.lease_etcd import EtcdLease
from drorch.state.lease_sqlite import SQLiteLease

StoreFactory = Callable[[], LeaseStore]


@pytest.fixture(params=["sqlite", "etcd", "dynamodb"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """A factory of independent clients of one lease (as separate controllers would hold)."""
    if request.param == "sqlite":
        return lambda: SQLiteLease(tmp_path / "state.db")
    if request.param == "dynamodb":
        client = request.getfixturevalue("lease_table")
        return lambda: DynamoDBLease(client, "drorch-lease", f"test-{tmp_path.name}")
    url = request.getfixturevalue("etcd")
    key = f"/drorch/test-{tmp_path.name}/leader"
    return lambda: EtcdLease([url], key)


def test_one_holder_at_a_time_and_tokens_grow(stores: StoreFactory) -> None:
    a, b = stores(), stores()
    first = a.acquire("controller-a", 5)
    with pytest.raises(LeaseHeld, match="held by controller-a") as held:
        b.acquire("controller-b", 5)
    assert held.value.exit_code == 4 and "until" in str(held.value)
    current = b.current()
    assert current is not None and (current.holder, current.token) == ("controller-a", first.token)
    renewed = a.renew(first, 5)
    assert renewed.token == first.token and renewed.expires_at >= first.expires_at
    a.release(renewed)
    assert b.current() is None
    second = b.acquire("controller-b", 5)
    assert second.token > first.token  # a fencing token orders every holder after the ones before
    with pytest.raises(LeaseLost):
        a.renew(renewed, 5)  # the old holder cannot renew its way back in


def test_an_unrenewed_lease_expires(stores: StoreFactory) -> None:
    a, b = stores(), stores()
    gone = a.acquire("crashed", 2)
    deadline = time.monotonic() + 10
    while True:  # bounded: the TTL is 2 s (etcd may round it up by a second)
        try:
            taken = b.acquire("survivor", 5)
            break
        except LeaseHeld:
            assert time.monotonic() < deadline, "the lease never expired"
            time.sleep(0.2)
    assert taken.token > gone.token


def test_racing_controllers_exactly_one_wins(stores: StoreFactory) -> None:
    clients = [stores() for _ in range(6)]
    start = threading.Barrier(len(clients))
    won: list[str] = []
    refused: list[str] = []

    def race(index: int) -> None:
        start.wait(timeout=10)
        try:
            clients[index].acquire(f"controller-{index}", 10)
            won.append(f"controller-{index}")
        except LeaseHeld:
            refused.append(f"controller-{index}")

    threads = [threading.Thread(target=race, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(won) == 1 and len(refused) == len(clients) - 1


def test_a_keeper_renews_then_reports_a_stolen_lease(stores: StoreFactory) -> None:
    keeper = Keeper(stores(), "keeper", 3)
    try:
        time.sleep(4)  # longer than the TTL: only renewal keeps it
        keeper.check()
        other = stores()
        held = other.current()
        assert held is not None and held.holder == "keeper"
    finally:
        keeper.close()
    assert stores().current() is None  # released on close


def test_etcd_unreachable_is_a_clear_error() -> None:
    store = EtcdLease([f"http://127.0.0.1:{free_port()}"], "/drorch/nowhere/leader")
    with pytest.raises(OperationFailed, match=r"no etcd endpoint answered .*state\.lease\.etcd_endpoints"):
        store.acquire("controller", 5)


def test_sqlite_passes_on_the_lease_of_a_dead_local_holder(tmp_path: Path) -> None:
    """One host: a holder killed mid-run (its PID gone) does not block the next controller until expiry."""
    import socket

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(timeout=10)
    store = SQLiteLease(tmp_path / "state.db")
    store.acquire(f"{socket.gethostname()}:{dead.pid}", 600)
    assert store.acquire("next-controller", 5).holder == "next-controller"
    other_host = SQLiteLease(tmp_path / "other.db")
    other_host.acquire(f"another-host:{dead.pid}", 600)
    with pytest.raises(LeaseHeld):  # a process on another host cannot be checked: its expiry decides
        other_host.acquire("next-controller", 5)


@pytest.fixture(scope="module")
def lease_table(lab: Lab) -> Iterator[Any]:
    """The lease table in the lab's moto (seoul's region); removed afterwards."""
    client = lab.estate.aws("seoul", "dynamodb")
    client.create_table(TableName="drorch-lease", BillingMode="PAY_PER_REQUEST",
                        AttributeDefinitions=[{"AttributeName": "name", "AttributeType": "S"}],
                        KeySchema=[{"AttributeName": "name", "KeyType": "HASH"}])
    try:
        yield client
    finally:
        client.delete_table(TableName="drorch-lease")


def test_dynamodb_lease_table_missing_or_wrong_is_a_clear_error(lab: Lab) -> None:
    client = lab.estate.aws("seoul", "dynamodb")
    with pytest.raises(InvalidInput, match=r"state\.lease\.dynamodb\.table: table nowhere does not exist in "
                                           r"ap-northeast-2; create it \(partition key 'name'"):
        DynamoDBLease(client, "nowhere", "leader")
    client.create_table(TableName="wrong-keys", BillingMode="PAY_PER_REQUEST",
                        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
    with pytest.raises(InvalidInput, match="must have exactly the partition key 'name'"):
        DynamoDBLease(client, "wrong-keys", "leader")
    client.delete_table(TableName="wrong-keys")


def test_notes_are_shared_by_every_controller_and_outlive_the_lease(stores: StoreFactory) -> None:
    first, second = stores(), stores()  # two controllers' own clients of one store
    grant = first.acquire("controller-a", 5)
    assert second.get_note("last-automatic-failover") is None
    first.put_note("last-automatic-failover", "1795390000.5")
    first.release(grant)  # the leader that wrote it is gone...
    assert second.get_note("last-automatic-failover") == "1795390000.5"  # ...the next one reads it
    second.put_note("last-automatic-failover", "1795390100.25")
    assert first.get_note("last-automatic-failover") == "1795390100.25"
    assert second.current() is None  # a note is not a lease: the lease stays free
