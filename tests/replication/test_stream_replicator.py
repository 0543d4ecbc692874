"""drorch's DynamoDB stream replicator as a library, on the lab's moto: order, replays, reversal, both ways, bad input.

Every test replicates tables of its own (see ``stream_lab``) with a state file of its own.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from drorch.engine.actions.dynamodb import (
    ReplicateFromParams,
    WaitReplicatedParams,
    plan_replicate_from,
    plan_wait_replicated,
    replicate_from_action,
    wait_replicated_action,
)
from drorch.engine.catalogue import ActionContext
from drorch.errors import InvalidInput, OperationFailed
from drorch.lab.control import Lab
from drorch.providers.aws.streams import Shard
from drorch.providers.estate import Estate
from drorch.replication.dynamodb import shards
from drorch.replication.dynamodb.apply import SEQ, SRC
from drorch.replication.dynamodb.direction import set_source
from drorch.replication.dynamodb.replicator import Replicator
from drorch.replication.dynamodb.stats import RoundStats, merge
from drorch.replication.dynamodb.verify import verify
from drorch.state.checkpoints import Checkpoints, open_checkpoints
from tests.replication.stream_lab import KeySpec, Replicated, items, replicated


def _put(estate: Estate, site: str, table: str, key: str, **values: int) -> None:
    item: dict[str, Any] = {"pk": {"S": key}, **{k: {"N": str(v)} for k, v in values.items()}}
    estate.aws(site, "dynamodb").put_item(TableName=table, Item=item)


def _set(estate: Estate, site: str, table: str, key: str, value: int) -> None:
    estate.aws(site, "dynamodb").update_item(
        TableName=table, Key={"pk": {"S": key}}, UpdateExpression="SET v = :v",
        ExpressionAttributeValues={":v": {"N": str(value)}})


def _delete(estate: Estate, site: str, table: str, key: str) -> None:
    estate.aws(site, "dynamodb").delete_item(TableName=table, Key={"pk": {"S": key}})


def _until_caught_up(replicator: Replicator) -> RoundStats:
    total = replicator.run(threading.Event(), until_caught_up=True, max_seconds=20)
    assert total.caught_up and not total.errors, total.to_json()
    return total


def _replicator(table: Replicated, **kwargs: Any) -> Replicator:
    config = table.config
    return Replicator(Estate(config), open_checkpoints(config), poll_seconds=0.05, **kwargs)


def test_inserts_updates_and_deletes_arrive_in_order_and_replays_change_nothing(lab: Lab, tmp_path: Path) -> None:
    with replicated(lab, tmp_path) as table:
        estate = Estate(table.config)
        seoul, tokyo = table.names["seoul"], table.names["tokyo"]
        for n in range(30):
            _put(estate, "seoul", seoul, f"k{n}", v=0)
        for version in range(1, 6):  # many changes to the same items: only the last may survive
            for n in range(0, 30, 3):
                _set(estate, "seoul", seoul, f"k{n}", version)
        for n in range(1, 30, 3):
            _delete(estate, "seoul", seoul, f"k{n}")
        _put(estate, "seoul", seoul, "k1", v=42)  # deleted, then written again
        applied: list[tuple[str, str]] = []
        observe = lambda record, _site, _at: applied.append(  # noqa: E731
            (record["dynamodb"]["Keys"]["pk"]["S"], record["dynamodb"]["SequenceNumber"]))
        with _replicator(table, batch_size=25, observe=observe) as replicator:
            total = _until_caught_up(replicator)
        assert items(estate, "tokyo", tokyo) == items(estate, "seoul", seoul)
        assert items(estate, "tokyo", tokyo)["k3"]["v"] == {"N": "5"} and "k4" not in items(estate, "tokyo", tokyo)
        assert total.shipped == 30 + 50 + 10 + 1
        per_key: dict[str, list[int]] = {}
        for key, sequence in applied:
            per_key.setdefault(key, []).append(int(sequence))
        assert all(seqs == sorted(seqs) for seqs in per_key.values())  # each item's changes in stream order

        marks = items(estate, "tokyo", tokyo, strip=False)["k3"]
        assert marks[SRC]["S"].startswith(f"arn:aws:dynamodb:ap-northeast-2:123456789012:table/{seoul}/stream/")
        assert len(marks[SEQ]["S"]) == 40

        store = open_checkpoints(table.config)
        store.forget(marks[SRC]["S"])  # a replicator that lost its checkpoints replays the whole stream
        with _replicator(table) as replicator:
            replay = _until_caught_up(replicator)
        assert replay.shipped < total.shipped and replay.pairs[0].newer > 0
        assert items(estate, "tokyo", tokyo) == items(estate, "seoul", seoul)


def test_reversal_ships_the_new_source_from_where_it_was_tracked(lab: Lab, tmp_path: Path) -> None:
    with replicated(lab, tmp_path) as table:
        config = table.config
        estate = Estate(config)
        seoul, tokyo = table.names["seoul"], table.names["tokyo"]
        for n in range(10):
            _put(estate, "seoul", seoul, f"k{n}", v=n)
        with _replicator(table) as replicator:
            _until_caught_up(replicator)
            _until_caught_up(replicator)  # tokyo's echoes tracked to the end
            ctx = ActionContext(estate, {})
            params = ReplicateFromParams(site="tokyo")
            assert plan_replicate_from(ctx, params) == [f"DynamoDB {table.name}: replicate from seoul -> from tokyo"]
            assert replicate_from_action(ctx, params) == {"sources": {table.name: "tokyo"}, "changed": [table.name]}
            assert plan_replicate_from(ctx, params) == []  # idempotent: nothing left to change
            assert replicate_from_action(ctx, params)["changed"] == []

            _set(estate, "tokyo", tokyo, "k1", 100)  # the application now writes at tokyo
            _put(estate, "tokyo", tokyo, "new", v=1)
            _delete(estate, "tokyo", tokyo, "k2")
            _set(estate, "seoul", seoul, "k5", 555)  # a straggler on the old source: tracked, not shipped
            total = _until_caught_up(replicator)
            for _ in range(100):  # seoul's stream is tracked in the background: a few more rounds settle it
                if any(t.site == "seoul" for t in total.tracked):
                    break
                time.sleep(0.05)
                total = merge(total, replicator.round())
        (pair,) = total.pairs
        assert (pair.source, pair.target, pair.shipped) == ("tokyo", "seoul", 3)  # no replay of earlier echoes
        local = {t.site: t.local_writes for t in total.tracked}
        assert local["seoul"] == 1 and local.get("tokyo", 0) == 0  # the straggler; echoes are not local writes
        seoul_now = items(estate, "seoul", seoul)
        assert seoul_now["k1"]["v"] == {"N": "100"} and seoul_now["new"]["v"] == {"N": "1"} and "k2" not in seoul_now

        assert set_source(config, None, "seoul")[0].changed  # and back again
        _set(estate, "seoul", seoul, "k1", 200)
        with _replicator(table) as replicator:
            back = _until_caught_up(replicator)
        assert [(p.source, p.target) for p in back.pairs] == [("seoul", "tokyo")]
        assert items(estate, "tokyo", tokyo)["k1"]["v"] == {"N": "200"}


def test_wait_replicated_ships_what_the_source_holds_or_fails_in_time(lab: Lab, tmp_path: Path) -> None:
    with replicated(lab, tmp_path) as table:
        estate = Estate(table.config)
        seoul, tokyo = table.names["seoul"], table.names["tokyo"]
        for n in range(20):
            _put(estate, "seoul", seoul, f"k{n}", v=n)
        ctx = ActionContext(estate, {})
        assert plan_wait_replicated(ctx, WaitReplicatedParams()) == [
            f"DynamoDB {table.name}: changes seoul has not shipped yet applied at tokyo"]
        done = wait_replicated_action(ctx, WaitReplicatedParams(timeout=20))
        assert done["shipped"] == 20 and items(estate, "tokyo", tokyo) == items(estate, "seoul", seoul)
        estate.aws("seoul", "dynamodb").update_table(TableName=seoul, StreamSpecification={"StreamEnabled": False})
        with pytest.raises(OperationFailed, match=f"not caught up within 1 s: {table.name}: DynamoDB table {seoul} "
                                                  r"at seoul \(ap-northeast-2\) has no stream enabled"):
            wait_replicated_action(ctx, WaitReplicatedParams(timeout=1))


def test_both_directions_do_not_ping_pong(lab: Lab, tmp_path: Path) -> None:
    with replicated(lab, tmp_path, direction="both") as table:
        estate = Estate(table.config)
        seoul, tokyo = table.names["seoul"], table.names["tokyo"]
        for n in range(5):
            _put(estate, "seoul", seoul, f"s{n}", v=n)
            _put(estate, "tokyo", tokyo, f"t{n}", v=n)
        _delete(estate, "seoul", seoul, "s0")
        with _replicator(table) as replicator:
            _until_caught_up(replicator)
            _set(estate, "tokyo", tokyo, "s1", 11)  # an application update of a copy goes back to its origin
            _until_caught_up(replicator)
            marks = items(estate, "seoul", seoul, strip=False)
            rounds = [replicator.round() for _ in range(5)]
        assert all(r.shipped == 0 and r.caught_up for r in rounds)  # quiet: nothing bounces
        assert items(estate, "seoul", seoul, strip=False) == marks  # every version stable
        assert items(estate, "seoul", seoul) == items(estate, "tokyo", tokyo)
        assert set(items(estate, "seoul", seoul)) == {"s1", "s2", "s3", "s4", "t0", "t1", "t2", "t3", "t4"}
        assert items(estate, "seoul", seoul)["s1"]["v"] == {"N": "11"}


def test_binary_sort_keys_and_sets_replicate_and_verify(lab: Lab, tmp_path: Path) -> None:
    keys: dict[str, KeySpec] = {site: (("pk", "S", "HASH"), ("part", "B", "RANGE")) for site in ("seoul", "tokyo")}
    with replicated(lab, tmp_path, keys=keys) as table:
        estate = Estate(table.config)
        seoul = estate.aws("seoul", "dynamodb")
        for n in range(6):
            seoul.put_item(TableName=table.names["seoul"], Item={
                "pk": {"S": "p"}, "part": {"B": bytes([n, 255])}, "tags": {"SS": [f"t{n}", "all"]},
                "blob": {"B": b"\x00" * n}})
        seoul.delete_item(TableName=table.names["seoul"], Key={"pk": {"S": "p"}, "part": {"B": bytes([3, 255])}})
        with _replicator(table) as replicator:
            _until_caught_up(replicator)
        config = table.config
        (compared,) = verify(Estate(config), open_checkpoints(config))
        assert compared.same and compared.source_items == compared.target_items == 5, compared.to_json()


@pytest.mark.parametrize("problem", ["stream off", "key schema", "missing"])
def test_bad_tables_are_refused_before_anything_is_written(lab: Lab, tmp_path: Path, problem: str) -> None:
    views: dict[str, str | None] = {"seoul": None} if problem == "stream off" else {}
    keys: dict[str, KeySpec] | None = {"tokyo": (("id", "S", "HASH"),)} if problem == "key schema" else None
    with replicated(lab, tmp_path, views=views, keys=keys) as table:
        estate = Estate(table.config)
        _put(estate, "seoul", table.names["seoul"], "k", v=1)
        if problem == "missing":
            estate.aws("tokyo", "dynamodb").delete_table(TableName=table.names["tokyo"])
        expected = {
            "stream off": f"DynamoDB table {table.names['seoul']} at seoul (ap-northeast-2) has no stream enabled",
            "key schema": f"DynamoDB table {table.names['tokyo']} at tokyo (ap-northeast-1) is keyed id HASH (S)",
            "missing": f"DynamoDB table {table.names['tokyo']} at tokyo (ap-northeast-1) does not exist",
        }[problem]
        with _replicator(table) as replicator, pytest.raises(InvalidInput, match=re.escape(expected)):
            replicator.check()
        if problem == "missing":
            estate.aws("tokyo", "dynamodb").create_table(  # for the fixture's clean-up
                TableName=table.names["tokyo"], BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
        else:
            with _replicator(table) as replicator:
                stats = replicator.round()  # a running replicator reports it and goes on with other tables
            assert not stats.caught_up and stats.errors and expected in stats.errors[0]
        assert estate.aws("tokyo", "dynamodb").scan(TableName=table.names["tokyo"])["Items"] == []


def test_parents_are_read_before_children() -> None:
    listed = [Shard("c2", "b", True), Shard("b", "a", False), Shard("a", None, False), Shard("c1", "b", True),
              Shard("orphan", "aged-out", True)]
    order = [s.shard_id for s in shards.in_order(listed)]
    assert order.index("a") < order.index("b") < min(order.index("c1"), order.index("c2"))
    assert [s.shard_id for s in shards.ready(listed, [])] == ["a", "orphan"]
    assert [s.shard_id for s in shards.ready(listed, ["a"])] == ["b", "orphan"]
    assert sorted(s.shard_id for s in shards.ready(listed, ["a", "b"])) == ["c1", "c2", "orphan"]


def test_checkpoints_only_move_forward(tmp_path: Path) -> None:
    store = Checkpoints(tmp_path / "state.db")
    store.save("arn", "shard", "1100000000017454423010")
    store.save("arn", "shard", "1100000000017454423009")  # a slower replicator's older position
    assert store.shards("arn")["shard"].sequence == "1100000000017454423010"
    store.save("arn", "shard", "999999999999999999999999", finished=True)  # longer: a larger number
    store.save("arn", "shard", None)
    saved = store.shards("arn")["shard"]
    assert (saved.sequence, saved.finished) == ("999999999999999999999999", True)
    assert store.set_source("orders", "tokyo") is None and store.set_source("orders", "seoul") == "tokyo"
    assert (tmp_path / "state.db").stat().st_mode & 0o777 == 0o600
