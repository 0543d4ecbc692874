"""Everything decided before a playbook's first change: variables, parameters, guard verdicts.

Shared by the executor (which refuses on a failed guard) and by ``drorch plan``
(which shows every verdict), so what a plan promises is what a run checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from drorch.engine.playbook import template
from drorch.engine.playbook.model import Playbook
from drorch.engine.topology import observe
from drorch.errors import InvalidInput, RefusedForSafety
from drorch.providers.estate import Estate


@dataclass(frozen=True)
class GuardVerdict:
    name: str
    check: str
    passed: bool
    overridable: bool
    message: str


class Readiness(dict[str, bool]):
    """Site -> ready, probed on first use only: a full probe round is paid for only when an expression
    actually reads it (``to == from or ready[to]`` never does for a failover to the current primary)."""

    def __init__(self, estate: Estate) -> None:
        super().__init__()
        self._estate: Estate | None = estate
        self.reasons = Reasons(self)

    def _load(self) -> None:
        if self._estate is not None:
            from drorch.probes.report import status

            estate, self._estate = self._estate, None
            found = status(estate).readiness
            self.update({site: r.ready for site, r in found.items()})
            self.reasons.update({site: "; ".join(r.reasons) or "ready" for site, r in found.items()})

    def __missing__(self, site: str) -> bool:
        self._load()
        return dict.get(self, site, False)

    def __contains__(self, site: object) -> bool:
        self._load()
        return dict.__contains__(self, site)


class Reasons(dict[str, str]):
    """Site -> why it is not ready (for guard messages), loaded with the readiness it explains."""

    def __init__(self, readiness: Readiness) -> None:
        super().__init__()
        self._readiness = readiness

    def __missing__(self, site: str) -> str:
        self._readiness._load()
        return dict.get(self, site, "not assessed (no single writable primary)")


def builtins(estate: Estate) -> dict[str, Any]:
    """The engine's variables, observed from the estate now (the databases say who is primary)."""
    config = estate.config
    topology = observe(estate)
    ready = Readiness(estate)
    return {
        "primary": topology.primary, "primary_reachable": topology.primary_reachable,
        "reachable": topology.reachable, "writable": list(topology.writable), "partition": topology.partition,
        "sites": list(config.sites), "standbys": [s for s in config.sites if s != topology.primary],
        "service": config.service, "ready": ready, "not_ready_because": ready.reasons,
    }


def parameters(playbook: Playbook, given: dict[str, str], variables: dict[str, Any]) -> dict[str, Any]:
    """The variables with the playbook's parameters resolved (given, else defaults); bad ones are InvalidInput."""
    unknown = sorted(set(given) - set(playbook.parameters))
    if unknown:
        raise InvalidInput(f"playbook {playbook.name} has no parameter {', '.join(unknown)} "
                           f"(it takes: {', '.join(playbook.parameters) or 'none'})")
    resolved = dict(variables)
    for name, parameter in playbook.parameters.items():
        if name in given:
            value: Any = given[name]
        elif parameter.default is not None:
            value = template.render(parameter.default, resolved)
        else:
            raise InvalidInput(f"playbook {playbook.name} needs --param {name}=VALUE ({parameter.description})")
        if parameter.choices is not None and str(value) not in parameter.choices:
            raise InvalidInput(f"--param {name}={value}: playbook {playbook.name} takes "
                               f"{', '.join(parameter.choices)}")
        resolved[name] = value
    for site_param in ("to", "from"):
        if site_param in resolved and resolved[site_param] not in variables["sites"]:
            raise InvalidInput(f"--param {site_param}={resolved[site_param]}: unknown site "
                               f"(the config defines {', '.join(variables['sites'])})")
    return resolved


def verdicts(playbook: Playbook, variables: dict[str, Any]) -> list[GuardVerdict]:
    """Every guard evaluated (a failed guard's message rendered with the run's variables)."""
    found = []
    for guard in playbook.guards:
        passed = template.truth(guard.check, variables)
        # rendered only when it is shown: a message may read what the check did not need (readiness)
        message = guard.message if passed else str(template.render(guard.message, variables))
        found.append(GuardVerdict(guard.name, guard.check, passed, guard.overridable, message))
    return found


def check_guards(found: list[GuardVerdict], force: bool) -> list[str]:
    """Refuse on the first failed guard, unless forced and overridable; returns the overridden guards' names."""
    overridden = []
    for verdict in found:
        if verdict.passed:
            continue
        if force and verdict.overridable:
            overridden.append(verdict.name)
            continue
        why = f": {verdict.message}" if verdict.message else ""
        override = " (overridable with --force)" if verdict.overridable else ""
        raise RefusedForSafety(f"guard '{verdict.name}' failed ({verdict.check}){why}{override}; "
                               "nothing was changed")
    return overridden
