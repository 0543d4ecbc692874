"""The playbook format (also exported as JSON Schema for editors).

A playbook is reviewed like code, so its model is strict: unknown keys are
errors, names are unique, and every ``with:`` block is checked against the
action's own parameter model before anything runs.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


StepName = Field(min_length=1, max_length=120, pattern=r"^[^\n]+$")


class Parameter(Model):
    description: str = ""
    default: str | int | float | bool | None = Field(
        default=None, description="a value or a template; no default makes the parameter required")
    choices: list[str] | None = None


class Guard(Model):
    """A precondition checked before anything changes; a failed guard refuses the run (exit 3)."""

    name: str = StepName
    check: str = Field(description="a template expression that must be true, e.g. \"ready[to]\"")
    message: str = Field(default="", description="why it matters, shown when the guard fails")
    overridable: bool = Field(default=False, description="--force may override it (recorded in the journal)")


class Step(Model):
    name: str = StepName
    action: str = Field(description="an action from `drorch playbook actions`")
    with_: dict[str, Any] = Field(default_factory=dict, alias="with", description="action parameters (templated)")
    timeout: float = Field(default=300.0, gt=0, le=86400)
    retries: int = Field(default=0, ge=0, le=20)
    on_error: Literal["abort", "continue", "rollback"] = "abort"
    when: str | None = Field(default=None, description="run only when this template expression is true")


class Parallel(Model):
    name: str = StepName
    parallel: list[Step] = Field(min_length=1)
    on_error: Literal["abort", "continue", "rollback"] = "abort"
    when: str | None = None


def _kind(value: Any) -> str:
    """A step item is a parallel group when it has a ``parallel`` list, else a single step."""
    if isinstance(value, dict):
        return "parallel" if "parallel" in value else "step"
    return "parallel" if isinstance(value, Parallel) else "step"


StepItem = Annotated[Annotated[Step, Tag("step")] | Annotated[Parallel, Tag("parallel")], Discriminator(_kind)]


class Playbook(Model):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    description: str = ""
    parameters: dict[str, Parameter] = Field(default_factory=dict)
    guards: list[Guard] = Field(default_factory=list)
    steps: list[StepItem] = Field(min_length=1)
    rollback: list[Step] = Field(default_factory=list)

    def all_steps(self) -> list[tuple[tuple[str | int, ...], Step]]:
        """Every step with its field path in the file, parallel members included."""
        found: list[tuple[tuple[str | int, ...], Step]] = []
        for index, item in enumerate(self.steps):
            if isinstance(item, Parallel):
                found += [(("steps", index, "parallel", inner), step) for inner, step in enumerate(item.parallel)]
            else:
                found.append((("steps", index), item))
        found += [(("rollback", index), step) for index, step in enumerate(self.rollback)]
        return found
