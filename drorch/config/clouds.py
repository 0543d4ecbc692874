"""The cloud names a ``clouds.yaml`` defines, read without importing openstacksdk.

The config loader checks every OpenStack site's cloud here, so a typo is a config
error (exit 2, with the names the file does define) before anything runs; the
OpenStack connection reads the same way, because openstacksdk silently skips a
file it cannot parse.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from drorch.errors import InvalidInput


def defined_clouds(clouds_file: Path, field: str) -> list[str]:
    """The cloud names in the file, read here first because openstacksdk silently skips a bad file."""
    try:
        document = yaml.safe_load(clouds_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInput(f"{field}.clouds_file: {clouds_file} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{field}.clouds_file: cannot read {clouds_file}: {exc}") from None
    except yaml.YAMLError as exc:
        # The error text can quote the offending line, which may hold a password: give its position only.
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise InvalidInput(f"{field}.clouds_file: {clouds_file} is not valid YAML{where}") from None
    clouds = document.get("clouds") if isinstance(document, dict) else None
    if not isinstance(clouds, dict):
        raise InvalidInput(f"{field}.clouds_file: {clouds_file} has no 'clouds:' mapping")
    return sorted(str(name) for name in clouds)
