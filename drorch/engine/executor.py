"""Running a playbook: resolve parameters, check guards, execute steps, roll back on request.

Everything that can be checked is checked before the first change: the playbook
was validated on load, parameters are resolved and checked here, and guards are
evaluated. A dry run stops right after that and lists every step with its
rendered parameters, changing nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from drorch.engine import preflight
from drorch.engine.catalogue import ActionContext, catalogue
from drorch.engine.plan import plan
from drorch.engine.playbook import template
from drorch.engine.playbook.model import Parallel, Playbook, Step
from drorch.engine.run import Progress, Run, StepResult
from drorch.errors import InvalidInput, OperationFailed, RefusedForSafety
from drorch.providers.estate import Estate
from drorch.state.journal import Journal
from drorch.state.lease import Keeper, LeaseLost


@dataclass(frozen=True)
class Options:
    dry_run: bool = False
    force: bool = False
    approvals: frozenset[str] = frozenset()
    interactive: bool = False
    lease: Keeper | None = None  # the controller lease: checked before every step, its token journaled


@dataclass(frozen=True)
class Resume:
    """Continue an interrupted run: its parameters, and the steps it already completed."""

    run_id: str
    parameters: dict[str, Any]
    done: frozenset[str]


@dataclass(frozen=True)
class PlaybookResult:
    run_id: str | None
    playbook: str
    status: str  # succeeded | failed | rolled_back | dry-run
    variables: dict[str, Any]
    steps: list[StepResult]
    planned: dict[str, Any] = field(default_factory=dict)  # the plan, for a dry run
    overridden_guards: list[str] = field(default_factory=list)
    error: str | None = None
    elapsed_seconds: float | None = None
    measured: dict[str, Any] = field(default_factory=dict)  # what ``measure`` added to the journal's summary
    exit_code: int = 0  # of the error that stopped the run: 3 when a step refused for safety, else 1


Measure = Callable[[PlaybookResult], dict[str, Any]]


class _Executor:
    def __init__(self, playbook: Playbook, estate: Estate, run: Run, ctx: ActionContext,
                 resume: Resume | None = None, lease: Keeper | None = None) -> None:
        self.playbook, self.estate, self.run, self.ctx, self.lease = playbook, estate, run, ctx, lease
        self.actions = catalogue()
        self.resume = resume

    def call(self, step: Step) -> Callable[[], dict[str, Any]]:
        """The step as a zero-argument callable: render, validate, run with retries and a timeout."""

        def attempt() -> dict[str, Any]:
            spec = self.actions[step.action]
            try:
                params = spec.params.model_validate(template.render(step.with_, self.ctx.variables))
            except ValidationError as exc:
                raise InvalidInput(f"step '{step.name}': {exc.errors()[0]['msg']} in with: "
                                   f"{exc.errors()[0]['loc']}") from None
            last: Exception | None = None
            for _ in range(step.retries + 1):
                try:
                    return _with_timeout(lambda: spec.run(self.ctx, params), step.timeout, step.name)
                except RefusedForSafety:
                    raise
                except Exception as exc:  # retried up to step.retries times, then reported
                    last = exc
            assert last is not None
            raise last

        return attempt

    def item(self, item: Step | Parallel) -> None:
        if self.lease is not None:
            self.lease.check()  # a controller that lost the lease stops here, between steps
        if item.when is not None and not template.truth(item.when, self.ctx.variables):
            self.run.skip(item.name, f"when: {item.when} is false")
            return
        if isinstance(item, Step):
            if self.resume is not None and item.name in self.resume.done:
                self.run.skip(item.name, f"done in run {self.resume.run_id}")
                return
            self.run.step(item.name, self.call(item))
            return
        with ThreadPoolExecutor(max_workers=len(item.parallel)) as pool:
            futures = [pool.submit(self.item, member) for member in item.parallel]
            errors = [error for f in futures if (error := f.exception()) is not None]
        if errors:
            raise errors[0]


def _with_timeout(fn: Callable[[], dict[str, Any]], timeout: float, name: str) -> dict[str, Any]:
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as exc:  # carried back to the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=target, name=f"step:{name}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise OperationFailed(f"step '{name}' did not finish within its timeout of {timeout:g} s")
    if "error" in outcome:
        raise outcome["error"]
    value: dict[str, Any] = outcome["value"]
    return value


def execute(playbook: Playbook, estate: Estate, given: dict[str, str], options: Options = Options(),
            journal: Journal | None = None, progress: Progress | None = None, source: str | None = None,
            resume: Resume | None = None, operation: str | None = None, context: dict[str, Any] | None = None,
            measure: Measure | None = None) -> PlaybookResult:
    """Run ``playbook``; raise InvalidInput / RefusedForSafety before any change when it must not run.

    ``source`` (the playbook's path) is journaled so the run can be resumed; with ``resume`` the
    parameters of the interrupted run are reused, its guards (already passed) are not checked
    again, and its completed steps are skipped. ``operation`` names the run in the journal
    (default ``playbook:NAME``), ``context`` adds to its summary, and ``measure`` (given the
    finished result) adds measurements such as RTO and RPO before the run is closed.
    """
    if resume is None:
        variables = preflight.parameters(playbook, given, preflight.builtins(estate))
        overridden = preflight.check_guards(preflight.verdicts(playbook, variables), options.force)
    else:
        variables, overridden = {**preflight.builtins(estate), **resume.parameters}, []
    ctx = ActionContext(estate, variables, options.dry_run, set(options.approvals), options.interactive)
    if options.dry_run:
        planned = plan(playbook, estate, given, options.force).to_json()
        return PlaybookResult(None, playbook.name, "dry-run", _plain(variables), [], planned, overridden)
    summary = {**(context or {}), "playbook": playbook.name, "source": source,
               "parameters": {k: v for k, v in _plain(variables).items() if k in playbook.parameters},
               "overridden_guards": overridden, "resumed_from": resume.run_id if resume else None}
    token = options.lease.token if options.lease is not None else None
    summary["fencing_token"] = token
    run = Run(operation or f"playbook:{playbook.name}", summary, progress, journal, fencing_token=token)
    executor = _Executor(playbook, estate, run, ctx, resume, options.lease)
    status, error, code = "succeeded", None, 0
    for item in playbook.steps:
        try:
            executor.item(item)
        except LeaseLost as exc:  # not ours to act any more: no rollback either, the new holder decides
            status, error, code = "failed", str(exc), exc.exit_code
            break
        except Exception as exc:  # the step's failure decides, by on_error, what happens next
            error = str(exc)
            if item.on_error == "continue":
                continue
            status, code = "failed", exc.exit_code if isinstance(exc, RefusedForSafety) else 1
            if item.on_error == "rollback":
                status = _roll_back(executor)
            break
    elapsed = round(run.elapsed(), 3)
    result = PlaybookResult(run.run_id, playbook.name, status, _plain(variables), list(run.steps), {}, overridden,
                            error, elapsed, exit_code=code)
    measured = measure(result) if measure is not None else {}
    run.finish(status, {**summary, "error": error, "elapsed_seconds": elapsed, **measured})
    return replace(result, measured=measured)


def _roll_back(executor: _Executor) -> str:
    """Run every rollback step, best effort; the run is rolled_back only if all of them succeeded."""
    ok = True
    for step in executor.playbook.rollback:
        if step.when is not None and not template.truth(step.when, executor.ctx.variables):
            executor.run.skip(f"rollback: {step.name}", f"when: {step.when} is false")
            continue
        try:
            executor.run.step(f"rollback: {step.name}", executor.call(step))
        except Exception:  # keep rolling back the rest; the journal has the failure
            ok = False
    return "rolled_back" if ok else "failed"


def _plain(variables: dict[str, Any]) -> dict[str, Any]:
    """JSON-able variables; a lazy built-in becomes the plain mapping of what was read (nothing is probed)."""
    return {k: dict(v) if isinstance(v, dict) else v for k, v in variables.items()
            if isinstance(v, str | int | float | bool | list | dict)}


def resume_run(journal: Journal, run_id: str, estate: Estate, options: Options = Options(),
               progress: Progress | None = None) -> PlaybookResult:
    """Finish an interrupted playbook run (the controller crashed or a step failed) from where it stopped."""
    from drorch.engine.playbook.loader import load_playbook

    record = journal.run(run_id)
    if record is None:
        raise InvalidInput(f"no run '{run_id}' in the journal; see `drorch runs list`")
    if not record.summary.get("source"):
        raise InvalidInput(f"run {run_id} is a {record.operation} run, not a resumable playbook run")
    if record.status not in ("running", "failed"):
        raise InvalidInput(f"run {run_id} is {record.status}: there is nothing to resume"
                           + (" (its rollback restored the start; run the playbook again)"
                              if record.status == "rolled_back" else ""))
    undone = [s.name.removeprefix("rollback: ") for s in record.steps
              if s.name.startswith("rollback: ") and s.status == "succeeded"]
    if undone:
        # Its completed steps are no longer done: skipping them would skip e.g. a fence the rollback lifted,
        # and promote beside a writable old primary. A new run observes the estate and decides afresh.
        raise RefusedForSafety(f"run {run_id} stopped and rolled back in part ({', '.join(undone)}), so the "
                               "steps it completed are not all in effect any more and resuming could skip one of "
                               "them; run the playbook again instead (it checks the estate and starts over)")
    from pathlib import Path

    playbook = load_playbook(Path(record.summary["source"]))
    done = frozenset(s.name for s in record.steps if s.status in ("succeeded", "skipped"))
    result = execute(playbook, estate, {}, options, journal, progress, record.summary["source"],
                     Resume(run_id, dict(record.summary.get("parameters", {})), done))
    journal.finish_run(run_id, "resumed", record.finished_at or time.time(),
                       {**record.summary, "resumed_by": result.run_id})
    return result


def unfinished_runs(journal: Journal, playbook: Playbook) -> list[str]:
    """Runs of this playbook that never finished (a controller died in them)."""
    return [r.run_id for r in journal.runs(200)
            if r.summary.get("playbook") == playbook.name and r.status == "running"]
