"""YAML loading that remembers where every value came from.

Validation errors must name file and line, so the loader keeps a map from each
field path (a tuple of keys and indexes) to the line it was written on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

FieldPath = tuple[str | int, ...]


def _walk(node: yaml.Node, path: FieldPath, lines: dict[FieldPath, int]) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, str(key.value))
            _walk(value, child, lines)
            lines[child] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), lines)


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys: YAML would silently keep the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _value in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    f"while reading the mapping that starts on line {node.start_mark.line + 1}", node.start_mark,
                    f"key '{key}' appears twice (first on line {seen[key]}): keep one", key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def load_with_lines(text: str) -> tuple[Any, dict[FieldPath, int]]:
    """Parse YAML text; return the data and a field-path -> line map. Duplicate keys are errors."""
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    lines: dict[FieldPath, int] = {}
    if node is not None:
        _walk(node, (), lines)
    return yaml.load(text, Loader=_StrictLoader), lines


def line_of(path: FieldPath, lines: dict[FieldPath, int]) -> int | None:
    """The line of the deepest known prefix of ``path`` (a missing field points at its parent)."""
    for end in range(len(path), -1, -1):
        line = lines.get(path[:end])
        if line is not None:
            return line
    return None


def format_location(file: Path, path: FieldPath, lines: dict[FieldPath, int]) -> str:
    line = line_of(path, lines)
    where = f"{file}:{line}" if line else str(file)
    dotted = ".".join(str(part) for part in path) or "(top level)"
    return f"{where}: {dotted}"


_HINTS = {
    "extra_forbidden": "unknown key: remove it or check its spelling against the README's reference",
    "missing": "required field: add it",
    "union_tag_invalid": "set 'kind' to one of the listed values",
    "union_tag_not_found": "add a 'kind' field",
    "int_parsing": "write a whole number, without quotes",
    "int_type": "write a whole number, without quotes",
    "float_parsing": "write a number, without quotes",
    "string_type": "write text (quote it if YAML reads it as a number or boolean)",
    "bool_parsing": "write true or false",
    "literal_error": "use one of the values listed",
    "greater_than": "raise the value",
    "greater_than_equal": "raise the value",
    "less_than": "lower the value",
    "dict_type": "write a mapping of keys; secrets are {file: PATH} or {env: VARIABLE}, never the value itself",
    "list_type": "write a list",
    "string_too_short": "it is empty: give it a value",
    "string_pattern_mismatch": "write it in the form shown",
}


def describe_error(error: Any) -> str:
    """A pydantic error as a message with a hint on how to fix it."""
    message = str(error["msg"])
    hint = _HINTS.get(str(error["type"]))
    return f"{message} ({hint})" if hint else message


def load_mapping_file(
    path: Path, what: str, unreadable_hint: str, shape: str
) -> tuple[dict[str, Any], dict[FieldPath, int]]:
    """Read a YAML file that must hold a mapping; clear InvalidInput (file, line, fix) otherwise.

    ``what`` names the document ("config", "playbook"), ``shape`` what the mapping should hold.
    """
    from drorch.errors import InvalidInput

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read {what} ({exc.strerror}); {unreadable_hint}") from None
    try:
        data, lines = load_with_lines(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise InvalidInput(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{path}:1: the {what} must be a mapping of keys ({shape})")
    return data, lines
