"""One stream record becomes one conditional write on a target table, safe to replay.

Every item the replicator writes carries where it came from (``_drorch_src``: the
source stream's ARN) and the position of the change in that stream (``_drorch_seq``:
the record's sequence number zero-padded, so string order is number order). A write
goes through only when the target's copy is not already at that position or later
from the same stream, so replaying records (after a crash, or two replicators at
once) never moves an item backwards. Sequence numbers only compare within one
stream, hence the source in the condition: a copy from another stream (the other
direction, a re-created stream) is simply replaced.

The same two attributes let the replicator recognise its own writes when it reads
the target's stream (``is_echo``), so ``both``-way tables do not ping-pong.
"""

from __future__ import annotations

import base64
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Literal

import botocore.exceptions

from drorch.providers import retry
from drorch.state.checkpoints import SEQUENCE_WIDTH, sequence_key

SRC = "_drorch_src"
SEQ = "_drorch_seq"
# Position of a backfilled copy: older than every stream record, so backfill never replaces a streamed change.
BACKFILL_SEQUENCE = "0" * SEQUENCE_WIDTH

_CONDITION = "attribute_not_exists(#seq) OR #src <> :src OR #seq < :seq"
_NAMES = {"#src": SRC, "#seq": SEQ}


@dataclass(frozen=True)
class Applied:
    """``newer``: the target already held this change or a later one from the same stream (nothing written).
    ``removed``: a delete removed an item, so the target's own stream will show a REMOVE for it."""

    outcome: Literal["applied", "newer"]
    removed: bool = False


def item_key(keys: dict[str, Any]) -> str:
    """A stable text form of an item's key (the same item gives the same text in every region)."""
    return json.dumps(keys, sort_keys=True, separators=(",", ":"), default=_binary)


def record_keys(record: dict[str, Any]) -> dict[str, Any]:
    """The key of the item a record changed, taken from its image when it has one.

    The image is what gets written, so its key is the one that addresses the item (moto, for
    one, encodes binary values in ``Keys`` twice); ``Keys`` only names the attributes.
    """
    change = record["dynamodb"]
    image = change.get("NewImage") or change.get("OldImage") or {}
    return {name: image.get(name, value) for name, value in change["Keys"].items()}


def canonical(value: Any) -> Any:
    """An attribute value (or item) in one form whatever order its sets came in, binaries as text."""
    if isinstance(value, bytes | bytearray):
        return _binary(value)
    if isinstance(value, dict):
        return {k: sorted(canonical(x) for x in v) if k in ("SS", "NS", "BS") else canonical(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [canonical(x) for x in value]
    return value


def _binary(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return "b64:" + base64.b64encode(value).decode()
    raise TypeError(f"not a DynamoDB key value: {type(value).__name__}")


def _marks(image: dict[str, Any] | None) -> tuple[str | None, str | None]:
    if image is None:
        return None, None
    return image.get(SRC, {}).get("S"), image.get(SEQ, {}).get("S")


def is_echo(record: dict[str, Any], own_source: str) -> bool:
    """Whether an INSERT/MODIFY record of ``own_source``'s stream was written by the replicator itself.

    The replicator stamps a copy with another stream's source and a new position; an
    application updating a copy leaves the stamp as it was (or drops it with a full put),
    so its change is shipped. A REMOVE carries no new image: see ``PendingDeletes``.
    """
    change = record["dynamodb"]
    new_src, new_seq = _marks(change.get("NewImage"))
    if new_src is None or new_src == own_source:
        return False
    return _marks(change.get("OldImage")) != (new_src, new_seq)


class PendingDeletes:
    """Deletes the replicator made, so their REMOVE records in the target's stream are not shipped back.

    A REMOVE has no new image to carry a mark, hence this memory; it is bounded, and lost on
    restart, when such an echo is shipped back as a conditional delete of an item already gone.
    """

    def __init__(self, cap: int = 100_000) -> None:
        self._pending: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._lock = threading.Lock()
        self._cap = cap

    def expect(self, where: str, key: str, delta: int = 1) -> None:
        with self._lock:
            count = self._pending.pop((where, key), 0) + delta
            if count > 0:
                self._pending[(where, key)] = count
            while len(self._pending) > self._cap:
                self._pending.popitem(last=False)

    def consume(self, where: str, key: str) -> bool:
        with self._lock:
            count = self._pending.get((where, key), 0)
            if count <= 0:
                return False
            if count == 1:
                del self._pending[(where, key)]
            else:
                self._pending[(where, key)] = count - 1
            return True


def _client_code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def put_copy(ddb: Any, table: str, item: dict[str, Any], source: str, position: str) -> bool:
    """Write ``item`` stamped with (``source``, ``position``) unless the target holds that or later; True if written."""
    stamped = {k: v for k, v in item.items() if k not in (SRC, SEQ)}
    stamped[SRC], stamped[SEQ] = {"S": source}, {"S": position}
    try:
        retry.call(lambda: ddb.put_item(
            TableName=table, Item=stamped, ConditionExpression=_CONDITION, ExpressionAttributeNames=_NAMES,
            ExpressionAttributeValues={":src": {"S": source}, ":seq": {"S": position}}))
    except botocore.exceptions.ClientError as exc:
        if _client_code(exc) == "ConditionalCheckFailedException":
            return False
        raise
    return True


def apply(ddb: Any, table: str, record: dict[str, Any], source: str) -> Applied:
    """Apply one INSERT, MODIFY or REMOVE record of ``source``'s stream to ``table`` (see the module docstring)."""
    change = record["dynamodb"]
    position = sequence_key(change["SequenceNumber"])
    if record["eventName"] != "REMOVE":
        written = put_copy(ddb, table, change["NewImage"], source, position)
        return Applied("applied" if written else "newer")
    try:
        old = retry.call(lambda: ddb.delete_item(
            TableName=table, Key=record_keys(record), ConditionExpression=_CONDITION, ExpressionAttributeNames=_NAMES,
            ExpressionAttributeValues={":src": {"S": source}, ":seq": {"S": position}}, ReturnValues="ALL_OLD"))
    except botocore.exceptions.ClientError as exc:
        if _client_code(exc) == "ConditionalCheckFailedException":
            return Applied("newer")
        raise
    return Applied("applied", removed=bool(old.get("Attributes")))
