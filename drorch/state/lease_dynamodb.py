"""The lease in DynamoDB: for controllers in several regions, with nothing to run but a table.

One item per lease (partition key ``name``) holds the holder, its expiry and the
fencing token. Every change is a conditional write, so two controllers racing
for a free lease are ordered by DynamoDB and exactly one condition holds:

* acquire: the item is absent, expired, or already ours; the token grows by one;
* renew and release: the item still names us with our token.

Conditions are only as strong as the region that evaluates them: every
controller must write to the same region (a global table keeps the item safe if
that region is lost, but its cross-region last-writer-wins must not arbitrate a
race). Expiry uses the writers' wall clocks, so controllers need NTP, as with
every TTL lease.
"""

from __future__ import annotations

import time
from typing import Any

import botocore.exceptions

from drorch.errors import InvalidInput
from drorch.providers import retry
from drorch.state.lease import Grant, LeaseLost, held_elsewhere

_NAMES = {"#h": "holder", "#t": "token", "#x": "expires_at"}


def _conditional(call: Any) -> bool:
    """Run a conditional write; False when its condition did not hold."""
    try:
        retry.call(call)
        return True
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise


class DynamoDBLease:
    def __init__(self, client: Any, table: str, name: str) -> None:
        self.client, self.table, self.name = client, table, name
        self._check_table()

    def _check_table(self) -> None:
        try:
            keys = retry.call(lambda: self.client.describe_table(TableName=self.table))["Table"]["KeySchema"]
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
            raise InvalidInput(
                f"state.lease.dynamodb.table: table {self.table} does not exist in "
                f"{self.client.meta.region_name}; create it (partition key 'name', type S), e.g. `aws dynamodb "
                f"create-table --table-name {self.table} --attribute-definitions AttributeName=name,AttributeType=S "
                "--key-schema AttributeName=name,KeyType=HASH --billing-mode PAY_PER_REQUEST`") from None
        if [(k["AttributeName"], k["KeyType"]) for k in keys] != [("name", "HASH")]:
            raise InvalidInput(f"state.lease.dynamodb.table: table {self.table} must have exactly the partition key "
                               "'name' (S) and no sort key; create a table for the lease alone")

    def _key(self) -> dict[str, Any]:
        return {"name": {"S": self.name}}

    def acquire(self, holder: str, ttl: float) -> Grant:
        now = time.time()
        try:
            answer = retry.call(lambda: self.client.update_item(
                TableName=self.table, Key=self._key(),
                UpdateExpression="SET #h = :h, #x = :x ADD #t :one",
                ConditionExpression="attribute_not_exists(#h) OR #x <= :now OR #h = :h",
                ExpressionAttributeNames=_NAMES,
                ExpressionAttributeValues={":h": {"S": holder}, ":x": {"N": repr(now + ttl)},
                                           ":now": {"N": repr(now)}, ":one": {"N": "1"}},
                ReturnValues="ALL_NEW"))
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            current = self.current()
            if current is None:  # it expired between our write and this read: try once more
                return self.acquire(holder, ttl)
            raise held_elsewhere(current) from None
        return _grant(answer["Attributes"])

    def renew(self, grant: Grant, ttl: float) -> Grant:
        expires = time.time() + ttl
        if not _conditional(lambda: self.client.update_item(
                TableName=self.table, Key=self._key(), UpdateExpression="SET #x = :x",
                ConditionExpression="#h = :h AND #t = :t", ExpressionAttributeNames=_NAMES,
                ExpressionAttributeValues={":h": {"S": grant.holder}, ":t": {"N": str(grant.token)},
                                           ":x": {"N": repr(expires)}})):
            current = self._read()
            raise LeaseLost(f"the lease now belongs to {current.holder if current else 'nobody'}")
        return Grant(grant.holder, grant.token, expires)

    def release(self, grant: Grant) -> None:
        _conditional(lambda: self.client.update_item(
            TableName=self.table, Key=self._key(), UpdateExpression="SET #x = :zero",
            ConditionExpression="#h = :h AND #t = :t", ExpressionAttributeNames=_NAMES,
            ExpressionAttributeValues={":h": {"S": grant.holder}, ":t": {"N": str(grant.token)},
                                       ":zero": {"N": "0"}}))

    def current(self) -> Grant | None:
        found = self._read()
        return found if found is not None and found.expires_at > time.time() else None

    def put_note(self, name: str, value: str) -> None:
        """An item of its own beside the lease's (``NAME#note#NOTE``)."""
        retry.call(lambda: self.client.put_item(TableName=self.table, Item={
            "name": {"S": f"{self.name}#note#{name}"}, "value": {"S": value}}))

    def get_note(self, name: str) -> str | None:
        item = retry.call(lambda: self.client.get_item(TableName=self.table, ConsistentRead=True, Key={
            "name": {"S": f"{self.name}#note#{name}"}})).get("Item")
        return str(item["value"]["S"]) if item and "value" in item else None

    def _read(self) -> Grant | None:
        item = retry.call(lambda: self.client.get_item(TableName=self.table, Key=self._key(),
                                                       ConsistentRead=True)).get("Item")
        return _grant(item) if item and "holder" in item else None


def _grant(item: dict[str, Any]) -> Grant:
    return Grant(item["holder"]["S"], int(item["token"]["N"]), float(item["expires_at"]["N"]))
