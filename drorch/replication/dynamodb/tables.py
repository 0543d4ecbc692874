"""The physical copies of a replicated table, checked before anything is written.

Each copy must exist, all copies must share one key schema (a record's key from one
must address the same item in the others), and every stream the replicator ships
must be enabled with ``NEW_AND_OLD_IMAGES``: the new image is what gets written,
the old one tells an application's change from the replicator's own echo. Problems
are reported naming the site, region and table, with the fix, and nothing is written.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import botocore.exceptions

from drorch.config.schema import DynamoDBTable
from drorch.errors import InvalidInput
from drorch.providers import retry
from drorch.providers.estate import Estate

VIEW_TYPE = "NEW_AND_OLD_IMAGES"
KeySchema = tuple[tuple[str, str, str], ...]  # (attribute, HASH|RANGE, S|N|B)


@dataclass(frozen=True)
class Copy:
    """One site's copy of a logical table; ``stream_arn`` is None when its stream is off."""

    site: str
    region: str
    name: str
    keys: KeySchema
    stream_arn: str | None
    view_type: str | None

    @property
    def where(self) -> str:
        return f"DynamoDB table {self.name} at {self.site} ({self.region})"

    @property
    def key_names(self) -> tuple[str, ...]:
        return tuple(name for name, _, _ in self.keys)


def describe(estate: Estate, site: str, name: str) -> Copy:
    ddb = estate.aws(site, "dynamodb")
    region = str(ddb.meta.region_name)
    try:
        table = retry.call(functools.partial(ddb.describe_table, TableName=name))["Table"]
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            raise InvalidInput(f"DynamoDB table {name} at {site} ({region}) does not exist: create it with the same "
                               f"key schema as the other copies, or fix data.dynamodb.tables") from None
        raise
    types = {a["AttributeName"]: a["AttributeType"] for a in table.get("AttributeDefinitions", [])}
    keys = tuple((k["AttributeName"], k["KeyType"], types.get(k["AttributeName"], "?"))
                 for k in sorted(table["KeySchema"], key=lambda k: k["KeyType"] != "HASH"))
    spec: dict[str, Any] = table.get("StreamSpecification") or {}
    enabled = bool(spec.get("StreamEnabled"))
    return Copy(site, region, name, keys, table.get("LatestStreamArn") if enabled else None,
                spec.get("StreamViewType") if enabled else None)


def _stream_problem(copy: Copy) -> str | None:
    fix = (f"aws dynamodb update-table --region {copy.region} --table-name {copy.name} "
           f"--stream-specification StreamEnabled=true,StreamViewType={VIEW_TYPE}")
    if copy.stream_arn is None:
        return f"{copy.where} has no stream enabled, and drorch ships its changes from it: enable one with `{fix}`"
    if copy.view_type != VIEW_TYPE:
        return (f"{copy.where} has a {copy.view_type} stream; drorch needs {VIEW_TYPE}: disable the stream, "
                f"then `{fix}`")
    return None


def _keys_text(keys: KeySchema) -> str:
    return ", ".join(f"{name} {kind} ({type_})" for name, kind, type_ in keys)


def check(estate: Estate, table: DynamoDBTable, shipped: Iterable[str]) -> dict[str, Copy]:
    """Every copy of ``table`` by site; InvalidInput when one is missing, keyed differently, or a shipped
    site's stream is off (tracked sites may lack one: they only matter after the direction turns)."""
    copies = {site: describe(estate, site, name) for site, name in table.sites.items()}
    first = next(iter(copies.values()))
    for copy in copies.values():
        if copy.keys != first.keys:
            raise InvalidInput(f"{copy.where} is keyed {_keys_text(copy.keys)} but {first.where} is keyed "
                               f"{_keys_text(first.keys)}: copies of {table.name} need the same key schema "
                               "(recreate the copy with it)")
    for site in shipped:
        problem = _stream_problem(copies[site])
        if problem is not None:
            raise InvalidInput(problem)
    return copies
