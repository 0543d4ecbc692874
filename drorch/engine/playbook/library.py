"""Which playbook ``failover --to SITE``, ``failback`` and ``plan --to SITE`` run.

The team's reviewed playbook for the exact move wins (``failover-to-tokyo.yaml``),
else the general one (``failover.yaml``). The estate's own directory (the config's
``playbooks``, else ``playbooks/`` next to the config file) is searched before the
playbooks shipped with drorch, so an estate overrides or adds playbooks by name
and uses the shipped ones for the rest: on-call never has to remember a path at 3 a.m.
"""

from __future__ import annotations

from pathlib import Path

from drorch.config.schema import Config
from drorch.errors import InvalidInput

SHIPPED = Path(__file__).resolve().parents[3] / "playbooks"


def directories(config: Config) -> list[Path]:
    """Where playbooks are looked up, in order: the estate's own directory, then the shipped one."""
    found: list[Path] = []
    if config.playbooks is not None:
        own = config.resolve_path(config.playbooks)
        if not own.is_dir():
            raise InvalidInput(f"{config.source_path}: playbooks: {own} is not a directory "
                               "(point it at the directory holding the estate's playbooks)")
        found.append(own)
    elif config.source_path is not None and (beside := config.resolve_path(Path("playbooks"))).is_dir():
        found.append(beside)
    if SHIPPED.is_dir() and SHIPPED.resolve() not in {f.resolve() for f in found}:
        found.append(SHIPPED)
    if not found:
        raise InvalidInput(f"{config.source_path}: no playbook directory: set `playbooks: DIR` in the config")
    return found


def choose(config: Config, operation: str, site: str) -> Path:
    """``OPERATION-to-SITE.yaml`` if any directory has it, else ``OPERATION.yaml``."""
    folders = directories(config)
    for name in (f"{operation}-to-{site}.yaml", f"{operation}.yaml"):
        for folder in folders:
            if (folder / name).is_file():
                return folder / name
    raise InvalidInput(f"no playbook for {operation} to {site} in {', '.join(map(str, folders))}: add "
                       f"{operation}-to-{site}.yaml or {operation}.yaml, or pass --playbook")
