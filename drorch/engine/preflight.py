"""Everything decided before a playbook's first change: variables, parameters, guard verdicts.

Shared by the executor (which refuses on a failed guard) and by ``drorch plan``
(which shows every verdict), so what a plan promises is what a run checks.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from drorch.data import heartbeat
from drorch.engine.playbook import template
from drorch.engine.playbook.model import Playbook
from drorch.engine.topology import observe
from drorch.errors import InvalidInput, RefusedForSafety
from drorch.probes.readiness import Readiness
from drorch.providers.estate import Estate


@dataclass(frozen=True)
class GuardVerdict:
    name: str
    check: str
    passed: bool
    overridable: bool
    message: str


class Lazy(dict[str, Any]):
    """Site -> value, read from the estate on first use only: a probe is paid for only when an expression
    actually reads it (``to == from or ready[to]`` never does for a failover to the current primary)."""

    def __init__(self, load: Callable[[], dict[str, Any]], missing: Any) -> None:
        super().__init__()
        self._load: Callable[[], dict[str, Any]] | None = load
        self._missing = missing

    def _fill(self) -> None:
        if self._load is not None:
            load, self._load = self._load, None
            self.update(load())

    def __missing__(self, site: str) -> Any:
        self._fill()
        return dict.get(self, site, self._missing)

    def __contains__(self, site: object) -> bool:
        self._fill()
        return dict.__contains__(self, site)


def behind_freshest(estate: Estate, reachable: list[str]) -> dict[str, float]:
    """Seconds each reachable database's newest heartbeat trails the freshest one any of them holds.

    With the primary dead this is what failing over to a site would lose beyond the best choice:
    a replica cut off by a VPN outage ten minutes before trails by ten minutes, however idle it looks.
    """
    table = estate.config.data.heartbeat.table
    newest: dict[str, float] = {}
    for site in reachable:
        try:
            beat = heartbeat.newest(estate.mysql(site), table)
        except Exception:  # answered a moment ago; now it does not: no heartbeat known
            continue
        if beat is not None:
            newest[site] = beat.written_at
    freshest = max(newest.values(), default=None)
    return {site: round(freshest - at, 3) for site, at in newest.items()} if freshest is not None else {}


def _vpn_states(estate: Estate) -> dict[str, str]:
    """Site -> up | degraded | down (no entry: the site has no VPN)."""
    from drorch.probes import vpn

    states = {}
    for site in estate.config.sites:
        result = vpn.probe(estate, site)
        if result is not None:
            states[site] = ("degraded" if result.detail.get("degraded") else "up") if result.ok else (
                f"down ({result.error})" if result.error else "down")
    return states


def builtins(estate: Estate) -> dict[str, Any]:
    """The engine's variables, observed from the estate now (the databases say who is primary)."""
    config = estate.config
    topology = observe(estate)

    @functools.cache
    def readiness() -> dict[str, Readiness]:
        from drorch.probes.report import status

        return status(estate).readiness

    return {
        "primary": topology.primary, "primary_reachable": topology.primary_reachable,
        "reachable": topology.reachable, "writable": list(topology.writable), "partition": topology.partition,
        "sites": list(config.sites), "standbys": [s for s in config.sites if s != topology.primary],
        "service": config.service, "rpo": config.objectives.rpo_seconds, "rto": config.objectives.rto_seconds,
        "ready": Lazy(lambda: {site: r.ready for site, r in readiness().items()}, False),
        "not_ready_because": Lazy(lambda: {site: "; ".join(r.reasons) or "ready" for site, r in readiness().items()},
                                  "not assessed (no single writable primary)"),
        "behind": Lazy(lambda: behind_freshest(estate, topology.reachable), float("inf")),
        "vpn": Lazy(lambda: _vpn_states(estate), "none"),
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
