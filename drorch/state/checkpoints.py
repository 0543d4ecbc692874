"""Where drorch's DynamoDB stream replicator stands: per-shard checkpoints and each table's source site.

They live in the state file beside the journal, so a restarted replicator (or the
controller that took over on the same host) resumes after the last applied batch
instead of replaying a day of stream records, and a failover's choice of source
survives the process that made it.

A checkpoint only moves forward: two replicators reading the same shard (serve's
and a playbook's ``dynamodb.wait_replicated``) can never move it back. Sequence
numbers are compared zero-padded to 40 digits, their documented maximum length.
A connection per operation keeps the store safe from any thread, as the journal.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from drorch.config.schema import Config
from drorch.state.sqlite_file import StateFile

SEQUENCE_WIDTH = 40

_SCHEMA = """
CREATE TABLE IF NOT EXISTS dynamodb_checkpoints (
  stream_arn TEXT NOT NULL, shard_id TEXT NOT NULL, sequence TEXT, sequence_key TEXT NOT NULL DEFAULT '',
  finished INTEGER NOT NULL DEFAULT 0, updated_at REAL NOT NULL, PRIMARY KEY (stream_arn, shard_id));
CREATE TABLE IF NOT EXISTS dynamodb_sources (
  table_name TEXT PRIMARY KEY, site TEXT NOT NULL, set_at REAL NOT NULL);
"""

# The newer position wins; a finished shard stays finished.
_SAVE = """
INSERT INTO dynamodb_checkpoints (stream_arn, shard_id, sequence, sequence_key, finished, updated_at)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (stream_arn, shard_id) DO UPDATE SET
  sequence = CASE WHEN excluded.sequence_key > sequence_key THEN excluded.sequence ELSE sequence END,
  sequence_key = MAX(sequence_key, excluded.sequence_key),
  finished = MAX(finished, excluded.finished),
  updated_at = excluded.updated_at
"""


def sequence_key(sequence: str) -> str:
    """A sequence number as a string that sorts like the number (DynamoDB's are decimal, 21 to 40 digits)."""
    if not sequence.isdigit() or len(sequence) > SEQUENCE_WIDTH:
        raise ValueError(f"not a DynamoDB Streams sequence number: {sequence!r}")
    return sequence.zfill(SEQUENCE_WIDTH)


@dataclass(frozen=True)
class Checkpoint:
    """``sequence``: the last record applied (None: nothing read yet); ``finished``: a closed shard read to its end."""

    sequence: str | None
    finished: bool


class Checkpoints(StateFile):
    SCHEMA = _SCHEMA

    def shards(self, stream_arn: str) -> dict[str, Checkpoint]:
        """Every shard of the stream drorch has read from, by shard id."""
        with self._db() as db:
            rows = db.execute("SELECT shard_id, sequence, finished FROM dynamodb_checkpoints WHERE stream_arn = ?",
                              (stream_arn,)).fetchall()
        return {str(row[0]): Checkpoint(row[1], bool(row[2])) for row in rows}

    def save(self, stream_arn: str, shard_id: str, sequence: str | None, finished: bool = False) -> None:
        """Record that the shard is applied up to ``sequence`` (and read to its end when ``finished``)."""
        key = sequence_key(sequence) if sequence is not None else ""
        with self._db() as db:
            db.execute(_SAVE, (stream_arn, shard_id, sequence, key, int(finished), time.time()))

    def forget(self, stream_arn: str) -> None:
        """Drop a stream's checkpoints: its next reader starts from the oldest record kept."""
        with self._db() as db:
            db.execute("DELETE FROM dynamodb_checkpoints WHERE stream_arn = ?", (stream_arn,))

    def source(self, table: str) -> str | None:
        """The site recorded as the source of logical table ``table`` (None: never set)."""
        with self._db() as db:
            row = db.execute("SELECT site FROM dynamodb_sources WHERE table_name = ?", (table,)).fetchone()
        return None if row is None else str(row[0])

    def set_source(self, table: str, site: str) -> str | None:
        """Record ``site`` as the table's source; returns the previous one (None: never set)."""
        with self._db() as db:
            row = db.execute("SELECT site FROM dynamodb_sources WHERE table_name = ?", (table,)).fetchone()
            db.execute("INSERT OR REPLACE INTO dynamodb_sources (table_name, site, set_at) VALUES (?, ?, ?)",
                       (table, site, time.time()))
        return None if row is None else str(row[0])


def open_checkpoints(config: Config) -> Checkpoints:
    """The checkpoint store in ``config.state``'s file (relative to the config file), beside the journal."""
    return Checkpoints(config.resolve_path(config.state.path))
