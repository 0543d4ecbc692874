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
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from drorch.engine.catalogue import ActionContext, catalogue
from drorch.engine.playbook import template
from drorch.engine.playbook.model import Parallel, Playbook, Step
from drorch.engine.run import Progress, Run, StepResult
from drorch.engine.topology import observe
from drorch.errors import InvalidInput, OperationFailed, RefusedForSafety
from drorch.providers.estate import Estate
from drorch.state.journal import Journal


@dataclass(frozen=True)
class Options:
    dry_run: bool = False
    force: bool = False
    approvals: frozenset[str] = frozenset()
    interactive: bool = False


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
    planned: list[dict[str, Any]] = field(default_factory=list)
    overridden_guards: list[str] = field(default_factory=list)
    error: str | None = None
    elapsed_seconds: float | None = None


def _builtins(estate: Estate, needs_readiness: bool) -> dict[str, Any]:
    config = estate.config
    topology = observe(estate)
    variables: dict[str, Any] = {
        "primary": topology.primary, "primary_reachable": topology.primary_reachable,
        "reachable": topology.reachable, "writable": list(topology.writable), "partition": topology.partition,
        "sites": list(config.sites), "standbys": [s for s in config.sites if s != topology.primary],
        "service": config.service, "ready": {},
    }
    if needs_readiness:
        from drorch.probes.report import status

        report = status(estate)
        variables["ready"] = {site: r.ready for site, r in report.readiness.items()}
    return variables


def _parameters(playbook: Playbook, given: dict[str, str], variables: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(given) - set(playbook.parameters))
    if unknown:
        raise InvalidInput(f"playbook {playbook.name} has no parameter {', '.join(unknown)} "
                           f"(it takes: {', '.join(playbook.parameters) or 'none'})")
    resolved = dict(variables)
    for name, parameter in playbook.parameters.items():
        if name in given:
            value: Any = given[name]
        elif parameter.default is not None:
            value = template.render(parameter.default, resolved)
        else:
            raise InvalidInput(f"playbook {playbook.name} needs --param {name}=VALUE ({parameter.description})")
        if parameter.choices is not None and str(value) not in parameter.choices:
            raise InvalidInput(f"--param {name}={value}: choose one of {', '.join(parameter.choices)}")
        resolved[name] = value
    for site_param in ("to", "from"):
        if site_param in resolved and resolved[site_param] not in variables["sites"]:
            raise InvalidInput(f"--param {site_param}={resolved[site_param]}: unknown site "
                               f"(the config defines {', '.join(variables['sites'])})")
    return resolved


def _check_guards(playbook: Playbook, variables: dict[str, Any], force: bool) -> list[str]:
    overridden = []
    for guard in playbook.guards:
        if template.truth(guard.check, variables):
            continue
        if force and guard.overridable:
            overridden.append(guard.name)
            continue
        why = f": {guard.message}" if guard.message else ""
        override = " (overridable with --force)" if guard.overridable else ""
        raise RefusedForSafety(f"guard '{guard.name}' failed ({guard.check}){why}{override}; nothing was changed")
    return overridden


def _uses_readiness(playbook: Playbook) -> bool:
    texts = [g.check for g in playbook.guards] + [s.when or "" for _, s in playbook.all_steps()]
    return any("ready" in template.undeclared_in_expression(t) for t in texts if t)


class _Executor:
    def __init__(self, playbook: Playbook, estate: Estate, run: Run, ctx: ActionContext,
                 resume: Resume | None = None) -> None:
        self.playbook, self.estate, self.run, self.ctx = playbook, estate, run, ctx
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
            resume: Resume | None = None) -> PlaybookResult:
    """Run ``playbook``; raise InvalidInput / RefusedForSafety before any change when it must not run.

    ``source`` (the playbook's path) is journaled so the run can be resumed; with ``resume`` the
    parameters of the interrupted run are reused, its guards (already passed) are not checked
    again, and its completed steps are skipped.
    """
    if resume is None:
        variables = _parameters(playbook, given, _builtins(estate, _uses_readiness(playbook)))
        overridden = _check_guards(playbook, variables, options.force)
    else:
        variables, overridden = {**_builtins(estate, False), **resume.parameters}, []
    ctx = ActionContext(estate, variables, options.dry_run, set(options.approvals), options.interactive)
    if options.dry_run:
        planned = [{"step": step.name, "action": step.action,
                    "with": template.render(step.with_, variables) if step.when is None
                    or template.truth(step.when, variables) else "skipped (when is false)"}
                   for path, step in playbook.all_steps() if path[0] == "steps"]
        return PlaybookResult(None, playbook.name, "dry-run", _plain(variables), [], planned, overridden)
    summary = {"playbook": playbook.name, "source": source,
               "parameters": {k: v for k, v in _plain(variables).items() if k in playbook.parameters},
               "overridden_guards": overridden, "resumed_from": resume.run_id if resume else None}
    run = Run(f"playbook:{playbook.name}", summary, progress, journal)
    executor = _Executor(playbook, estate, run, ctx, resume)
    status, error = "succeeded", None
    for item in playbook.steps:
        try:
            executor.item(item)
        except Exception as exc:  # the step's failure decides, by on_error, what happens next
            error = str(exc)
            if item.on_error == "continue":
                continue
            status = "failed"
            if item.on_error == "rollback":
                status = _roll_back(executor)
            break
    elapsed = round(run.elapsed(), 3)
    run.finish(status, {**summary, "error": error, "elapsed_seconds": elapsed})
    return PlaybookResult(run.run_id, playbook.name, status, _plain(variables), list(run.steps), [], overridden,
                          error, elapsed)


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
    return {k: v for k, v in variables.items() if isinstance(v, str | int | float | bool | list | dict)}


def resume_run(journal: Journal, run_id: str, estate: Estate, options: Options = Options(),
               progress: Progress | None = None) -> PlaybookResult:
    """Finish an interrupted playbook run (the controller crashed or a step failed) from where it stopped."""
    from drorch.engine.playbook.loader import load_playbook

    record = journal.run(run_id)
    if record is None:
        raise InvalidInput(f"no run '{run_id}' in the journal; see `drorch runs list`")
    if not record.operation.startswith("playbook:") or not record.summary.get("source"):
        raise InvalidInput(f"run {run_id} is a {record.operation} run, not a resumable playbook run")
    if record.status not in ("running", "failed"):
        raise InvalidInput(f"run {run_id} is {record.status}: there is nothing to resume"
                           + (" (its rollback restored the start; run the playbook again)"
                              if record.status == "rolled_back" else ""))
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
            if r.operation == f"playbook:{playbook.name}" and r.status == "running"]
