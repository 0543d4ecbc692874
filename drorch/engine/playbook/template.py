"""Templating of playbook values: Jinja2, sandboxed, and strict about unknown names.

A misspelt variable must fail validation, not render as an empty string in
the middle of a failover.
"""

from __future__ import annotations

from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment

_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


def undeclared(text: str) -> set[str]:
    """Names a template uses; raises TemplateSyntaxError for a broken template."""
    return meta.find_undeclared_variables(_ENV.parse(text))


def undeclared_in_expression(expression: str) -> set[str]:
    return undeclared("{{ " + expression + " }}")


def render(value: Any, variables: dict[str, Any]) -> Any:
    """Render strings (recursively in lists and mappings); a string that is one ``{{ expr }}`` keeps its type."""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("{{") and stripped.endswith("}}") and stripped.count("{{") == 1:
            return _ENV.compile_expression(stripped[2:-2].strip())(**variables)
        return _ENV.from_string(value).render(**variables)
    if isinstance(value, list):
        return [render(item, variables) for item in value]
    if isinstance(value, dict):
        return {key: render(item, variables) for key, item in value.items()}
    return value


def truth(expression: str, variables: dict[str, Any]) -> bool:
    return bool(_ENV.compile_expression(expression)(**variables))


__all__ = ["TemplateSyntaxError", "render", "truth", "undeclared", "undeclared_in_expression"]
