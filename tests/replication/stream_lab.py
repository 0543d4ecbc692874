"""Tables of one's own in the lab's moto, and a config that replicates them: for the stream replicator's tests.

The lab is shared by every test of a worker, so each test creates tables with
unique names, replicates only those (its config lists no other replicated table)
and keeps its own state file; the tables are deleted afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from drorch.config import Config, load_config
from drorch.lab.control import Lab
from drorch.providers.estate import Estate

SITES = ("seoul", "tokyo")
KeySpec = tuple[tuple[str, str, str], ...]  # (attribute, S|N|B, HASH|RANGE)
HASH_ONLY: KeySpec = (("pk", "S", "HASH"),)
_PATH_KEYS = {"file", "credentials_file", "clouds_file", "vici_socket"}


@dataclass(frozen=True)
class Replicated:
    """A logical table with one physical copy per site (``names``), and the config that replicates it."""

    name: str
    names: dict[str, str]
    config_path: Path

    @property
    def config(self) -> Config:
        return load_config(self.config_path)


def _absolute(node: Any, base: Path) -> Any:
    """The lab config's relative paths made absolute, so a copy of it works from any directory."""
    if isinstance(node, dict):
        return {key: (str(base / value) if key in _PATH_KEYS and isinstance(value, str)
                      and not Path(value).is_absolute() else _absolute(value, base)) for key, value in node.items()}
    if isinstance(node, list):
        return [_absolute(item, base) for item in node]
    return node


def write_config(lab: Lab, directory: Path, tables: list[dict[str, Any]]) -> Path:
    """The lab's config replicating only ``tables`` (data.dynamodb.tables entries), state in ``directory``."""
    base = lab.layout.config.parent
    document = _absolute(yaml.safe_load(lab.layout.config.read_text()), base)
    for site, spec in document["sites"].items():
        if spec["provider"]["kind"] == "openstack":
            spec["provider"].setdefault("clouds_file", str(base / "clouds.yaml"))
        for table in tables:
            if site in table["sites"]:
                spec["dynamodb"]["tables"].append(table["sites"][site])
    if document.get("playbooks") and not Path(document["playbooks"]).is_absolute():
        document["playbooks"] = str(base / document["playbooks"])
    document["data"]["dynamodb"]["tables"] = tables
    document["state"] = {**document.get("state", {}), "path": str(directory / "state" / "drorch.db")}
    path = directory / "drorch.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def create_table(ddb: Any, name: str, keys: KeySpec = HASH_ONLY, view: str | None = "NEW_AND_OLD_IMAGES") -> None:
    stream = {"StreamEnabled": True, "StreamViewType": view} if view else {"StreamEnabled": False}
    ddb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST", StreamSpecification=stream,
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": kind} for key, kind, _ in keys],
        KeySchema=[{"AttributeName": key, "KeyType": role} for key, _, role in keys])


@contextmanager
def replicated(lab: Lab, directory: Path, direction: str = "follow-primary",
               keys: dict[str, KeySpec] | None = None, views: dict[str, str | None] | None = None
               ) -> Iterator[Replicated]:
    """A fresh table at seoul and tokyo (``keys``/``views`` per site override the defaults), deleted afterwards."""
    suffix = uuid.uuid4().hex[:8]
    name = f"t-{suffix}"
    names = {site: f"{name}-{site}" for site in SITES}
    estate = Estate(lab.config)
    created: list[str] = []
    try:
        for site in SITES:
            create_table(estate.aws(site, "dynamodb"), names[site], (keys or {}).get(site, HASH_ONLY),
                         (views or {}).get(site, "NEW_AND_OLD_IMAGES"))
            created.append(site)
        entry = {"name": name, "mode": "stream", "direction": direction, "sites": names}
        yield Replicated(name, names, write_config(lab, directory, [entry]))
    finally:
        for site in created:
            estate.aws(site, "dynamodb").delete_table(TableName=names[site])


def items(estate: Estate, site: str, table: str, strip: bool = True) -> dict[str, dict[str, Any]]:
    """Every item of a copy by its ``pk`` (without drorch's ``_drorch_*`` marks when ``strip``)."""
    ddb = estate.aws(site, "dynamodb")
    found: dict[str, dict[str, Any]] = {}
    start: dict[str, Any] | None = None
    while True:
        page = ddb.scan(TableName=table, ConsistentRead=True, **({"ExclusiveStartKey": start} if start else {}))
        for item in page["Items"]:
            found[item["pk"]["S"]] = {k: v for k, v in item.items() if not (strip and k.startswith("_drorch_"))}
        start = page.get("LastEvaluatedKey")
        if not start:
            return found
