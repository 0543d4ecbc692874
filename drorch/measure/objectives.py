"""RTO and RPO of a finished run, from what its steps recorded.

RPO is checked, not estimated: when the old primary was fenced, its binlog
position at that moment is compared with what the new primary holds. When it
could not be fenced (it was dead), heartbeats tell: the newest heartbeat written
on the old primary that did not reach the new one. Its time is known right away
when ``drorch serve`` wrote it (automatic failover), otherwise once the old
primary answers again (``drorch failback`` reads it before rejoining it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from drorch.data import heartbeat
from drorch.engine.run import StepResult
from drorch.providers.estate import Estate
from drorch.replication.roles import missing_transactions


@dataclass(frozen=True)
class DataLoss:
    rpo_seconds: float | None
    lost_transactions: int | None


def data_loss(estate: Estate, new_primary: str, steps: Sequence[StepResult]) -> DataLoss:
    fenced = next((s.detail["binlog_gtid"] for s in steps
                   if s.status == "succeeded" and "binlog_gtid" in s.detail), None)
    if fenced is None:
        return DataLoss(None, None)
    lost = missing_transactions(estate.mysql(new_primary), str(fenced))
    return DataLoss(0.0 if lost == 0 else None, lost)


def heartbeat_rpo(estate: Estate, old: str, new: str, old_newest: float | None = None) -> float | None:
    """Seconds of the old primary's history the new one lacks, by heartbeats; None when not measurable.

    ``old_newest`` is when the last heartbeat was acknowledged on the old primary; when not given it is
    read from the old primary itself (it must answer). Resolution: one heartbeat interval.
    """
    table = estate.config.data.heartbeat.table
    if old_newest is None:
        beat = heartbeat.of_origin(estate.mysql(old), table, old)
        if beat is None:
            return None
        old_newest = beat.written_at
    reached = heartbeat.of_origin(estate.mysql(new), table, old)
    if reached is None:
        return None
    return round(max(0.0, old_newest - reached.written_at), 3)
