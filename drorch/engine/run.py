"""A run: named steps executed in order, each timed, with the outcome kept.

The failover sequence is built from these steps; the declarative playbook engine
(a later issue) produces the same results, so reports and metrics stay unchanged.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from drorch.errors import DrorchError, OperationFailed
from drorch.state.journal import Journal, StepRecord

Progress = Callable[[str, str, float], None]


@dataclass(frozen=True)
class StepResult:
    name: str
    status: str  # succeeded | failed | skipped
    duration_seconds: float
    detail: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def step_notes(steps: list[StepResult]) -> list[str]:
    """What steps left for people to do (an action's ``notes`` in its result, e.g. a site left for later)."""
    return [str(note) for step in steps for note in step.detail.get("notes", [])]


class Run:
    """Executes steps and records them; the first failed step stops the run.

    With a journal, each step is written before it starts and again when it ends,
    so a controller killed mid-step leaves a record of exactly where it stopped.
    """

    def __init__(self, operation: str, summary: dict[str, Any], progress: Progress | None = None,
                 journal: Journal | None = None, fencing_token: int | None = None) -> None:
        self.run_id = uuid.uuid4().hex[:12]
        self.started = time.monotonic()
        self.started_wall = time.time()
        self.steps: list[StepResult] = []
        self._progress = progress or (lambda name, status, seconds: None)
        self._journal = journal
        self._lock = threading.Lock()  # parallel groups record steps from several threads
        self._next_index = 0
        self._running: dict[str, int] = {}
        self._token = {} if fencing_token is None else {"fencing_token": fencing_token}  # on every journaled step
        if journal is not None:
            journal.start_run(self.run_id, operation, self.started_wall, summary)

    def step(self, name: str, action: Callable[[], dict[str, Any] | None]) -> dict[str, Any]:
        self._progress(name, "running", 0.0)
        began_wall, began = time.time(), time.monotonic()
        if self._journal is not None:
            with self._lock:
                self._journal.record_step(self.run_id, StepRecord(self._next_index, name, "running", began_wall,
                                                                  detail=self._token))
                self._running[name] = self._next_index
                self._next_index += 1
        try:
            detail = action() or {}
        except DrorchError as exc:
            self._record(StepResult(name, "failed", time.monotonic() - began, error=str(exc)), began_wall)
            raise
        except Exception as exc:  # a provider error: report it as this step's failure
            error = f"{type(exc).__name__}: {exc}"
            self._record(StepResult(name, "failed", time.monotonic() - began, error=error), began_wall)
            raise OperationFailed(f"step '{name}' failed: {error}") from exc
        self._record(StepResult(name, "succeeded", time.monotonic() - began, detail), began_wall)
        return detail

    def skip(self, name: str, reason: str) -> None:
        self._record(StepResult(name, "skipped", 0.0, {"reason": reason}), time.time())

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def finish(self, status: str, summary: dict[str, Any]) -> None:
        if self._journal is not None:
            self._journal.finish_run(self.run_id, status, time.time(), summary)

    def _record(self, result: StepResult, began_wall: float) -> None:
        with self._lock:
            self.steps.append(result)
            if self._journal is not None:
                index = self._running.pop(result.name, None)
                if index is None:
                    index = self._next_index
                    self._next_index += 1
                self._journal.record_step(self.run_id, StepRecord(
                    index, result.name, result.status, began_wall, result.duration_seconds,
                    {**result.detail, **self._token}, result.error))
        self._progress(result.name, result.status, result.duration_seconds)
