"""The building blocks every part of the config schema shares.

Every model forbids unknown keys and is frozen: a typo in a DR config must fail
loudly at load time, never silently fall back to a default at 3 a.m., and the
loaded config is an immutable snapshot the rest of drorch can share freely.
"""

from __future__ import annotations

from datetime import UTC
from pathlib import Path
from string import Formatter
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


PositiveSeconds = Annotated[float, Field(gt=0)]


class SecretRef(Model):
    """Where a secret lives: an environment variable or a file, never the config itself."""

    env: str | None = None
    file: Path | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of 'env' (variable name) or 'file' (path to a file)")
        return self


class MySQLEndpoint(Model):
    host: str = Field(min_length=1)
    port: int = Field(default=3306, gt=0, lt=65536)
    user: str
    password: SecretRef
    flavor: Literal["mariadb", "mysql8"] = "mariadb"
    tls: Literal["required", "preferred", "disabled"] = Field(
        default="preferred", description="TLS to the server; 'required' verifies the certificate"
    )
    connect_timeout_seconds: PositiveSeconds = 2.0


def check_http_url(value: str) -> str:
    """An http(s) URL with a host, or ValueError showing how to write it."""
    from urllib.parse import urlsplit

    parsed = urlsplit(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"'{value}' is not an http(s) URL; write it with its scheme and host, e.g. "
                         f"http://{value.split('://')[-1] or 'HOST:PORT'}")
    return value


def check_cron(value: str) -> str:
    """A five-field cron expression (UTC), or ValueError with an example."""
    from datetime import datetime

    from cronsim import CronSim, CronSimError

    try:
        CronSim(value, datetime.now(UTC))
    except CronSimError as exc:
        raise ValueError(f"not a cron expression ({exc}); write five fields, e.g. '0 3 * * 1'") from None
    return value


def check_command(argv: list[str], allowed: frozenset[str], required: frozenset[str] = frozenset()) -> list[str]:
    """A command line (argv, run without a shell) whose ``{placeholders}`` drorch knows how to fill.

    Checked at load time, so a typo in a placeholder fails now, not in the middle of a drill.
    """
    if not argv or not argv[0].strip():
        raise ValueError("give the command as a list: the program first, then its arguments")
    used: set[str] = set()
    for arg in argv:
        try:
            used |= {name for _, name, _, _ in Formatter().parse(arg) if name is not None}
        except ValueError as exc:
            raise ValueError(f"argument '{arg}': {exc} (write a literal brace as '{{{{' or '}}}}')") from None
    unknown = used - allowed
    if unknown:
        raise ValueError(f"unknown placeholder {', '.join('{' + n + '}' for n in sorted(unknown))}; "
                         f"this command may use {', '.join('{' + n + '}' for n in sorted(allowed))}")
    missing = required - used
    if missing:
        raise ValueError(f"the command must receive {', '.join('{' + n + '}' for n in sorted(missing))} "
                         "in one of its arguments")
    return argv
