"""``drorch plan``: every concrete change a playbook would make now, and every guard's verdict.

Each action's own ``plan`` function reads the current state and names the change
("tokyo database: read_only ON -> OFF"); nothing is written anywhere, not even the
journal. Later steps are planned against today's state, not against the state the
earlier steps would leave: a plan says what each step changes from here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pydantic import ValidationError

from drorch.engine.catalogue import ActionContext, ActionSpec, catalogue
from drorch.engine.playbook import template
from drorch.engine.playbook.model import Parallel, Playbook, Step
from drorch.engine.preflight import GuardVerdict, builtins, parameters, verdicts
from drorch.errors import InvalidInput, RefusedForSafety
from drorch.providers.estate import Estate


@dataclass(frozen=True)
class PlannedStep:
    name: str
    action: str
    runs: bool
    params: dict[str, Any]
    changes: list[str]
    note: str | None = None  # why it would not run, or what could not be predicted


@dataclass(frozen=True)
class Plan:
    playbook: str
    parameters: dict[str, Any]
    guards: list[GuardVerdict]
    steps: list[PlannedStep]
    rollback: list[PlannedStep]
    force: bool = False

    @property
    def refused_by(self) -> list[str]:
        """Guards that would refuse the run (overridable ones only without --force)."""
        return [g.name for g in self.guards if not g.passed and not (self.force and g.overridable)]

    def to_json(self) -> dict[str, Any]:
        return {"playbook": self.playbook, "parameters": self.parameters, "would_run": not self.refused_by,
                "refused_by": self.refused_by, "guards": [asdict(g) for g in self.guards],
                "steps": [asdict(s) for s in self.steps], "rollback": [asdict(s) for s in self.rollback]}


def plan(playbook: Playbook, estate: Estate, given: dict[str, str], force: bool = False) -> Plan:
    """Plan ``playbook`` with ``given`` parameters against the estate as it is now."""
    variables = parameters(playbook, given, builtins(estate))
    ctx = ActionContext(estate, variables, dry_run=True)
    actions = catalogue()
    steps: list[PlannedStep] = []
    for item in playbook.steps:
        group_off = _off(item.when, variables) if isinstance(item, Parallel) else None
        for step in item.parallel if isinstance(item, Parallel) else [item]:
            steps.append(_plan_step(step, actions[step.action], ctx, group_off))
    rollback = [_plan_step(step, actions[step.action], ctx, None) for step in playbook.rollback]
    plain = {k: v for k, v in variables.items() if k in playbook.parameters}
    return Plan(playbook.name, plain, verdicts(playbook, variables), steps, rollback, force)


def _off(when: str | None, variables: dict[str, Any]) -> str | None:
    return None if when is None or template.truth(when, variables) else f"skipped: when {when} is false"


def _plan_step(step: Step, spec: ActionSpec, ctx: ActionContext, group_off: str | None) -> PlannedStep:
    off = group_off or _off(step.when, ctx.variables)
    try:
        params = spec.params.model_validate(template.render(step.with_, ctx.variables))
    except ValidationError as exc:
        raise InvalidInput(f"step '{step.name}': {exc.errors()[0]['msg']} in with: {exc.errors()[0]['loc']}") from None
    shown = params.model_dump()
    if off is not None:
        return PlannedStep(step.name, step.action, False, shown, [], off)
    if spec.plan is None:
        note = "changes not predicted: this action has no plan" if spec.mutating else None
        return PlannedStep(step.name, step.action, True, shown, [], note)
    try:
        return PlannedStep(step.name, step.action, True, shown, spec.plan(ctx, params))
    except RefusedForSafety as exc:
        return PlannedStep(step.name, step.action, True, shown, [], f"would be refused: {exc}")
    except Exception as exc:  # the plan reports what it cannot read; it never fails the plan
        return PlannedStep(step.name, step.action, True, shown, [], f"cannot tell now: {exc}")
