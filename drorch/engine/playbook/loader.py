"""Load and validate playbooks: every problem at once, each with file:line, field and fix.

Validation is complete before anything runs: the YAML and its schema, the
actions and their parameters, every template's syntax and the names it uses,
unique step names. ``drorch playbook validate`` and every run call the same code.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from drorch.config.yamlpos import FieldPath, describe_error, format_location, load_mapping_file
from drorch.engine.catalogue import ActionSpec, catalogue
from drorch.engine.playbook import template
from drorch.engine.playbook.model import Playbook, Step
from drorch.errors import InvalidInput

# Variables the engine provides to every template, besides the playbook's own parameters.
BUILTINS = {"primary", "primary_reachable", "reachable", "writable", "partition", "sites", "standbys", "ready",
            "not_ready_because", "behind", "vpn", "rpo", "rto", "service"}


def _template_problems(value: Any, path: FieldPath, known: set[str], expression: bool = False
                       ) -> Iterator[tuple[FieldPath, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _template_problems(item, (*path, key), known)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _template_problems(item, (*path, index), known)
    elif isinstance(value, str) and (expression or "{" in value):
        try:
            names = template.undeclared_in_expression(value) if expression else template.undeclared(value)
        except template.TemplateSyntaxError as exc:
            yield path, f"bad template: {exc.message} (check the {{{{ }}}} braces and quotes)"
            return
        for name in sorted(names - known):
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"known names: {', '.join(sorted(known))}"
            yield path, f"unknown variable '{name}' in template ({hint})"


def _step_problems(path: FieldPath, step: Step, actions: dict[str, ActionSpec], known: set[str]
                   ) -> Iterator[tuple[FieldPath, str]]:
    spec = actions.get(step.action)
    if spec is None:
        close = difflib.get_close_matches(step.action, list(actions), n=1)
        hint = f"did you mean '{close[0]}'?" if close else "see `drorch playbook actions`"
        yield (*path, "action"), f"unknown action '{step.action}' ({hint})"
    else:
        fields = spec.params.model_fields
        for key in step.with_:
            if key not in fields:
                yield (*path, "with", key), (f"'{step.action}' has no parameter '{key}' "
                                             f"(it takes: {', '.join(fields) or 'nothing'})")
        for key, info in fields.items():
            if info.is_required() and key not in step.with_:
                yield (*path, "with"), f"'{step.action}' needs parameter '{key}': add it under with:"
        if not any(isinstance(v, str) and "{" in v for v in step.with_.values()):
            try:
                spec.params.model_validate(step.with_)
            except ValidationError as exc:
                for err in exc.errors():
                    if err["type"] not in ("missing", "extra_forbidden"):
                        yield (*path, "with", *err["loc"]), describe_error(err)
    yield from _template_problems(step.with_, (*path, "with"), known)
    if step.when is not None:
        yield from _template_problems(step.when, (*path, "when"), known, expression=True)


def _name_problems(playbook: Playbook) -> Iterator[tuple[FieldPath, str]]:
    seen: dict[str, FieldPath] = {}
    named: list[tuple[FieldPath, str]] = [(("steps", i), item.name) for i, item in enumerate(playbook.steps)]
    named += [(path, step.name) for path, step in playbook.all_steps() if "parallel" in path or path[0] == "rollback"]
    for path, name in named:
        if name in seen:
            yield (*path, "name"), f"step name '{name}' is used twice (first at {'.'.join(map(str, seen[name]))})"
        else:
            seen[name] = path


def _clean_loc(loc: tuple[Any, ...]) -> FieldPath:
    """Drop the step/parallel tags pydantic inserts after ``steps.N``."""
    return tuple(part for i, part in enumerate(loc)
                 if not (i >= 2 and loc[i - 2] == "steps" and isinstance(loc[i - 1], int)
                         and part in ("step", "parallel")))


def problems(playbook: Playbook) -> list[tuple[FieldPath, str]]:
    actions = catalogue()
    known = BUILTINS | set(playbook.parameters)
    found = list(_name_problems(playbook))
    for name, parameter in playbook.parameters.items():
        if parameter.default is not None:
            found += _template_problems(parameter.default, ("parameters", name, "default"), known - {name})
    for index, guard in enumerate(playbook.guards):
        found += _template_problems(guard.check, ("guards", index, "check"), known, expression=True)
        found += _template_problems(guard.message, ("guards", index, "message"), known)
    for index, item in enumerate(playbook.steps):
        if getattr(item, "when", None) is not None and not isinstance(item, Step):
            found += _template_problems(item.when, ("steps", index, "when"), known, expression=True)
    for path, step in playbook.all_steps():
        found += _step_problems(path, step, actions, known)
    return found


def load_playbook(path: Path) -> Playbook:
    """Load ``path``; raise InvalidInput listing every problem (file:line: field: message (fix))."""
    data, lines = load_mapping_file(path, "playbook", "check the path",
                                    "name, parameters, guards, steps, rollback")
    try:
        playbook = Playbook.model_validate(data)
    except ValidationError as exc:
        found = [f"{format_location(path, _clean_loc(tuple(err['loc'])), lines)}: {describe_error(err)}"
                 for err in exc.errors()]
        raise InvalidInput(f"{path}: {len(found)} problem(s) in the playbook:", found) from None
    found = [f"{format_location(path, loc, lines)}: {message}" for loc, message in problems(playbook)]
    if found:
        raise InvalidInput(f"{path}: {len(found)} problem(s) in the playbook:", found)
    return playbook
