"""Just enough of MariaDB's binlog format (v4 events) to ship and replay transactions exactly.

The shipper cuts uploads at transaction boundaries, so every shipped object holds
whole transactions and the newest shipped event bounds the RPO truthfully. Restore
picks transactions by GTID (one group of events per transaction), which is how it
checks that no transaction is missing between the base backup and the target,
removes the duplicates that several servers' binlogs share after a failover, and
stops at an exact GTID or second. The chosen groups are written behind the
source's format description event as a binlog file that ``mariadb-binlog`` reads
like any other.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

MAGIC = b"\xfebin"
HEADER = struct.Struct("<IBIIIH")  # timestamp, type, server_id, event size, end position, flags
QUERY = 2
STOP = 3
ROTATE = 4
FORMAT_DESCRIPTION = 15
XID = 16
HEARTBEAT = 27
BINLOG_CHECKPOINT = 161
GTID = 162
GTID_LIST = 163
START_ENCRYPTION = 164
_NOT_IN_GROUPS = {STOP, ROTATE, FORMAT_DESCRIPTION, HEARTBEAT, BINLOG_CHECKPOINT, GTID_LIST, START_ENCRYPTION}
_STANDALONE = 0x01  # a GTID flag: the group is the next event alone (DDL, non-transactional statements)
_GTID_BODY = struct.Struct("<QIB")  # seq_no, domain_id, flags


class BinlogFormatError(ValueError):
    """The bytes are not a binlog this parser understands."""


@dataclass(frozen=True)
class Event:
    offset: int
    timestamp: int
    type: int
    server_id: int
    data: bytes


@dataclass
class Group:
    """One transaction: its GTID event and the events up to its commit."""

    domain: int
    server: int
    seq: int
    timestamp: int  # the newest of its events' timestamps (whole seconds)
    events: list[bytes]
    standalone: bool
    complete: bool = False

    @property
    def gtid(self) -> str:
        return f"{self.domain}-{self.server}-{self.seq}"

    @property
    def size(self) -> int:
        return sum(len(e) for e in self.events)


def events(data: bytes, start: int = 0, magic: bool = True) -> Iterator[Event]:
    """Complete events from ``start`` (0: the file's beginning, magic number included unless ``magic`` is False,
    for bytes cut from the middle of a file); stops at a partial one."""
    offset = start
    if offset == 0 and magic:
        if data[:4] != MAGIC[: len(data[:4])]:
            raise BinlogFormatError("not a binlog file (no magic number)")
        offset = 4
    while offset + HEADER.size <= len(data):
        timestamp, kind, server_id, size, _end, _flags = HEADER.unpack_from(data, offset)
        if size < HEADER.size:
            raise BinlogFormatError(f"an event at byte {offset} claims {size} bytes")
        if offset + size > len(data):
            return
        yield Event(offset, timestamp, kind, server_id, data[offset:offset + size])
        offset += size


def statement(event: bytes) -> bytes | None:
    """The SQL text of a query event (DDL, BEGIN/COMMIT, statement-logged writes), else None.

    Restore finds a transaction by what it did (the drill's bad migration, a DROP TABLE) through it. The
    event's checksum, when the binlog has them, trails the text."""
    if len(event) < HEADER.size + 13 or event[4] != QUERY:
        return None
    body = event[HEADER.size:]
    db_len, status_len = body[8], struct.unpack_from("<H", body, 11)[0]
    return body[13 + status_len + db_len + 1:]


def _ends_group(event: Event) -> bool:
    if event.type == XID:
        return True
    text = statement(event.data)
    return text is not None and text.upper().startswith((b"COMMIT", b"ROLLBACK"))


@dataclass(frozen=True)
class Scan:
    """How far a file holds whole transactions from some offset, and the times of their events."""

    end: int  # offset after the last whole transaction (or event outside transactions)
    first_event: int | None
    last_event: int | None


def whole_transactions(data: bytes, start: int, magic: bool = True) -> Scan:
    """Where the bytes from ``start`` stop holding only whole transactions (what may be shipped now); ``magic``
    False: ``data`` was cut from the middle of a file at an event boundary."""
    end = start if start > 0 else 0
    first = last = None
    group: Group | None = None
    for event in events(data, start, magic):
        if event.type == GTID:
            group = _start_group(event)
            continue
        if group is not None:
            group.events.append(event.data)
            if group.standalone or _ends_group(event):
                group = None
            else:
                continue
        end = event.offset + len(event.data)
        first = event.timestamp if first is None else first
        last = event.timestamp if last is None else max(last, event.timestamp)
    if end == 0 and start == 0 and magic and len(data) >= 4:
        end = 4  # the magic number alone
    return Scan(end, first, last)


def _start_group(event: Event) -> Group:
    seq, domain, flags = _GTID_BODY.unpack_from(event.data, HEADER.size)
    return Group(domain, event.server_id, seq, event.timestamp, [event.data], bool(flags & _STANDALONE))


def description(data: bytes) -> bytes:
    """The format description event at the start of a binlog file (the bytes from offset 0)."""
    for event in events(data, 0):
        if event.type == FORMAT_DESCRIPTION:
            return event.data
    raise BinlogFormatError("the binlog has no format description event")


def transactions(data: bytes, whole_file: bool = True) -> list[Group]:
    """The transactions in ``data`` (a whole file, or bytes from an event boundary inside one), in order."""
    groups: list[Group] = []
    group: Group | None = None
    for event in events(data, 0, magic=whole_file):
        if event.type == GTID:
            group = _start_group(event)
            groups.append(group)
            continue
        if event.type in _NOT_IN_GROUPS:
            group = None
            continue
        if group is None:
            continue
        group.events.append(event.data)
        group.timestamp = max(group.timestamp, event.timestamp)
        if group.standalone or _ends_group(event):
            group.complete = True
            group = None
    return groups


def binlog_file(description: bytes, groups: list[Group]) -> bytes:
    """A binlog file ``mariadb-binlog`` replays: the magic number, the format description, the transactions."""
    return MAGIC + description + b"".join(b"".join(g.events) for g in groups)
