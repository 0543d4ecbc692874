"""Which playbook ``failover --to SITE``, ``failback`` and ``plan --to SITE`` run.

The team's reviewed playbook for the exact move wins (``failover-to-tokyo.yaml``),
else the general one (``failover.yaml``). The directory is the config's
``playbooks``, else ``playbooks/`` next to the config file, else the playbooks
shipped with drorch: on-call never has to remember a path at 3 a.m.
"""

from __future__ import annotations

from pathlib import Path

from drorch.config.schema import Config
from drorch.errors import InvalidInput

SHIPPED = Path(__file__).resolve().parents[3] / "playbooks"


def directory(config: Config) -> Path:
    if config.playbooks is not None:
        found = config.resolve_path(config.playbooks)
        if not found.is_dir():
            raise InvalidInput(f"{config.source_path}: playbooks: {found} is not a directory "
                               "(point it at the directory holding failover.yaml)")
        return found
    beside = config.resolve_path(Path("playbooks"))
    if config.source_path is not None and beside.is_dir():
        return beside
    if SHIPPED.is_dir():
        return SHIPPED
    raise InvalidInput(f"{config.source_path}: no playbook directory: set `playbooks: DIR` in the config")


def choose(config: Config, operation: str, site: str) -> Path:
    """``OPERATION-to-SITE.yaml`` if the directory has it, else ``OPERATION.yaml``."""
    folder = directory(config)
    for candidate in (folder / f"{operation}-to-{site}.yaml", folder / f"{operation}.yaml"):
        if candidate.is_file():
            return candidate
    raise InvalidInput(f"no playbook for {operation} to {site} in {folder}: add {operation}-to-{site}.yaml or "
                       f"{operation}.yaml (see playbooks/ in drorch's repository), or pass --playbook")
