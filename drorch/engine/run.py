"""A run: named steps executed in order, each timed, with the outcome kept.

The failover sequence is built from these steps; the declarative playbook engine
(a later issue) produces the same results, so reports and metrics stay unchanged.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from drorch.errors import DrorchError, OperationFailed

Progress = Callable[[str, str, float], None]


@dataclass(frozen=True)
class StepResult:
    name: str
    status: str  # succeeded | failed | skipped
    duration_seconds: float
    detail: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


class Run:
    """Executes steps and records them; the first failed step stops the run."""

    def __init__(self, progress: Progress | None = None) -> None:
        self.run_id = uuid.uuid4().hex[:12]
        self.started = time.monotonic()
        self.started_wall = time.time()
        self.steps: list[StepResult] = []
        self._progress = progress or (lambda name, status, seconds: None)

    def step(self, name: str, action: Callable[[], dict[str, Any] | None]) -> dict[str, Any]:
        self._progress(name, "running", 0.0)
        began = time.monotonic()
        try:
            detail = action() or {}
        except DrorchError as exc:
            self._record(StepResult(name, "failed", time.monotonic() - began, error=str(exc)))
            raise
        except Exception as exc:  # a provider error: report it as this step's failure
            self._record(StepResult(name, "failed", time.monotonic() - began, error=f"{type(exc).__name__}: {exc}"))
            raise OperationFailed(f"step '{name}' failed: {type(exc).__name__}: {exc}") from exc
        self._record(StepResult(name, "succeeded", time.monotonic() - began, detail))
        return detail

    def skip(self, name: str, reason: str) -> None:
        self._record(StepResult(name, "skipped", 0.0, {"reason": reason}))

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def _record(self, result: StepResult) -> None:
        self.steps.append(result)
        self._progress(result.name, result.status, result.duration_seconds)
