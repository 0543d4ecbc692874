"""RTO and RPO of a finished run, from what its steps recorded.

RPO is checked, not estimated: when the old primary was fenced, its binlog
position at that moment is compared with what the new primary holds. When it
could not be fenced (it was dead), the RPO cannot be proven from the databases
and is reported as unknown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from drorch.engine.actions.mysql import missing_transactions
from drorch.engine.run import StepResult
from drorch.providers.estate import Estate


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
