"""Reading secrets referenced by the config, at the moment they are needed.

Secret values never travel inside the config object, so printing or journaling
the config can never leak them.
"""

from __future__ import annotations

import os

from drorch.config.base import SecretRef
from drorch.config.schema import Config
from drorch.errors import InvalidInput


def read_secret(config: Config, ref: SecretRef, field: str) -> str:
    """Return the secret's value; ``field`` names it in errors (never the value)."""
    if ref.env is not None:
        value = os.environ.get(ref.env)
        if value is None:
            raise InvalidInput(f"{field}: environment variable {ref.env} is not set; export it")
        return value
    assert ref.file is not None
    path = config.resolve_path(ref.file)
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise InvalidInput(f"{field}: cannot read secret file {path} ({exc.strerror})") from None
