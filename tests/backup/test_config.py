"""The backups: config section (loader checks), its IAM grants, cron schedules, and the binlog parser's edges."""

from __future__ import annotations

import struct
import zlib

import pytest
import yaml

from drorch.backup import events
from drorch.backup.schedule import due
from drorch.config import load_config
from drorch.engine.iam import backups as backup_grants
from drorch.errors import InvalidInput
from drorch.lab.control import Lab


@pytest.mark.parametrize(("change", "named"), [
    (("store", "bucket", "Bad_Bucket"), "backups.store.bucket: bucket name 'Bad_Bucket' is not valid"),
    (("store", "bucket", "192.168.1.1"), "looks like an IP address"),
    (("source", None, "osaka"), "backups.source: unknown site 'osaka'"),
    (("store", "provider", {"kind": "aws", "region": "KR1", "endpoint_url": "http://objects.example.com"}),
     "plain HTTP: backups travel to the store over TLS"),
    (("schedules", "base", "every night"), "not a cron expression"),
    (("retention", "daily", 0), "backups.retention.daily"),
])
def test_bad_backup_config_is_named(lab: Lab, change: tuple[str, str | None, object], named: str) -> None:
    document = yaml.safe_load(lab.layout.config.read_text())
    section, key, value = change
    if key is None:
        document["backups"][section] = value
    else:
        document["backups"][section][key] = value
    broken = lab.layout.root / "drorch-backup-config-case.yaml"
    broken.write_text(yaml.safe_dump(document, sort_keys=False))
    try:
        with pytest.raises(InvalidInput) as raised:
            load_config(broken)
        assert named in str(raised.value), str(raised.value)
    finally:
        broken.unlink()


def test_iam_grants_cover_the_bucket_prefix_only(lab: Lab) -> None:
    grants = dict(backup_grants(lab.config))
    assert grants[("s3:ListBucket",)] == "arn:aws:s3:::drorch-lab-backups"
    objects = next(resource for actions, resource in grants.items() if "s3:PutObject" in actions)
    assert objects == "arn:aws:s3:::drorch-lab-backups/shop/*"


def test_cron_schedules_are_due_once_per_firing() -> None:
    midnight = 1_800_000_000 - 1_800_000_000 % 86400  # a UTC midnight
    assert due("0 2 * * *", None, midnight, midnight + 2 * 3600)
    assert not due("0 2 * * *", midnight + 2 * 3600 + 5, midnight, midnight + 20 * 3600)
    assert due("0 2 * * *", midnight + 2 * 3600 + 5, midnight, midnight + 26 * 3600)
    assert not due(None, None, midnight, midnight + 10 * 86400)


def _event(kind: int, body: bytes, timestamp: int = 100, server: int = 1) -> bytes:
    size = events.HEADER.size + len(body) + 4
    header = events.HEADER.pack(timestamp, kind, server, size, 0, 0)
    return header + body + struct.pack("<I", zlib.crc32(header + body))


def _gtid(seq: int, standalone: bool) -> bytes:
    return _event(events.GTID, struct.pack("<QIB", seq, 0, 1 if standalone else 0) + b"\0" * 6)


def test_shipping_cuts_at_whole_transactions_and_replay_keeps_only_complete_ones() -> None:
    description = _event(events.FORMAT_DESCRIPTION, b"\4\0" + b"\0" * 50)
    ddl = _gtid(1, True) + _event(events.QUERY, b"\0" * 13 + b"\0" + b"CREATE TABLE t (a INT)")
    rows = _gtid(2, False) + _event(19, b"map") + _event(23, b"rows")
    commit = _event(events.XID, b"\1" * 8, timestamp=101)
    data = events.MAGIC + description + ddl + rows
    scan = events.whole_transactions(data, 0)
    assert scan.end == len(events.MAGIC + description + ddl)  # the open transaction waits for its commit
    whole = data + commit
    assert events.whole_transactions(whole, 0).end == len(whole)
    groups = events.transactions(whole)
    assert [(g.gtid, g.complete, g.timestamp) for g in groups] == [("0-1-1", True, 100), ("0-1-2", True, 101)]
    assert [g.gtid for g in events.transactions(data) if g.complete] == ["0-1-1"]
    assert events.description(whole) == description
    with pytest.raises(events.BinlogFormatError):
        list(events.events(b"nope" + description))
