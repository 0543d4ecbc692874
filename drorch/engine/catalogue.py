"""The action catalogue: every action a playbook may name, with typed parameters.

Actions register themselves with ``@action``; the parameter model both validates
a playbook's ``with:`` block before anything runs and documents the action in
``drorch playbook actions`` — the catalogue is generated from the code, never
written twice.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict

from drorch.providers.estate import Estate


class Params(BaseModel):
    """Base of every action's parameters: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass
class ActionContext:
    """What an action may use: the estate's clients, the run's variables, and whether this is a dry run."""

    estate: Estate
    variables: dict[str, Any]
    dry_run: bool = False
    approvals: set[str] = field(default_factory=set)
    interactive: bool = False


ActionFn = Callable[[ActionContext, Any], dict[str, Any]]
PlanFn = Callable[[ActionContext, Any], list[str]]


@dataclass(frozen=True)
class ActionSpec:
    name: str
    description: str
    params: type[Params]
    run: ActionFn
    mutating: bool
    plan: PlanFn | None = None


_REGISTRY: dict[str, ActionSpec] = {}
P = TypeVar("P", bound=Params)
_MODULES = ("mysql", "dns", "compute", "http", "control", "ecs", "eks", "openstack", "nks", "dynamodb", "vpn",
            "route53_health", "notify")


Typed = Callable[[ActionContext, P], dict[str, Any]]
TypedPlan = Callable[[ActionContext, P], list[str]]


def action(name: str, params: type[P], *, mutating: bool = True,
           plan: TypedPlan[P] | None = None) -> Callable[[Typed[P]], Typed[P]]:
    """Register the decorated function as action ``name`` (its docstring's first paragraph describes it).

    ``plan`` reads the current state and returns the concrete changes the action would make
    ("tokyo database: read_only ON -> OFF"), changing nothing; ``drorch plan`` shows them.
    An empty list means the action would change nothing (it is already done).
    """

    def register(fn: Typed[P]) -> Typed[P]:
        description = " ".join((fn.__doc__ or "").strip().split("\n\n")[0].split())
        _REGISTRY[name] = ActionSpec(name, description, params, fn, mutating, plan)
        return fn

    return register


def catalogue() -> dict[str, ActionSpec]:
    """Every registered action (importing the action modules registers them)."""
    for module in _MODULES:
        importlib.import_module(f"drorch.engine.actions.{module}")
    return dict(sorted(_REGISTRY.items()))
