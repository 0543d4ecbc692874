"""The journal: every run and every step, written before and after each step.

An abstract store with one module per backend (as Patroni does for its DCS), so
SQLite on one host and shared stores for several controllers share one contract.
Records are immutable snapshots; the engine only appends. The store also keeps the
newest status ``drorch serve`` saw, so ``drorch status`` can show the controller's
own view instantly instead of probing the whole estate again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class StepRecord:
    index: int
    name: str
    status: str  # running | succeeded | failed | skipped
    started_at: float
    duration_seconds: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    operation: str  # failover | drill | ...
    status: str  # running | succeeded | failed | rolled_back
    started_at: float
    finished_at: float | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    steps: tuple[StepRecord, ...] = ()


class Journal(Protocol):
    def start_run(self, run_id: str, operation: str, started_at: float, summary: dict[str, Any]) -> None: ...
    def record_step(self, run_id: str, step: StepRecord) -> None: ...
    def finish_run(self, run_id: str, status: str, finished_at: float, summary: dict[str, Any]) -> None: ...
    def runs(self, limit: int = 20) -> list[RunRecord]: ...
    def run(self, run_id: str) -> RunRecord | None: ...
    def publish_status(self, at: float, document: dict[str, Any]) -> None: ...
    def latest_status(self) -> tuple[float, dict[str, Any]] | None: ...
    def withdraw_status(self) -> None: ...
