"""Who is primary right now, seen from the databases themselves, and whether it is safe to act.

Shared by the built-in failover and the playbook engine (as template built-ins), so
both decide from the same observation: the writable database if there is exactly
one; otherwise the source the replicas follow; and, when the primary does not answer
drorch, whether the replicas still hear from it (a partition, not a death).
"""

from __future__ import annotations

from dataclasses import dataclass

from drorch.errors import RefusedForSafety
from drorch.providers.estate import Estate
from drorch.providers.mysql.client import ServerState


@dataclass(frozen=True)
class Topology:
    states: dict[str, ServerState | None]  # None: the database did not answer
    primary: str
    writable: tuple[str, ...]
    partition: str | None  # why the unreachable primary is not dead, when a replica still receives from it

    @property
    def reachable(self) -> list[str]:
        return [site for site, state in self.states.items() if state is not None]

    @property
    def primary_reachable(self) -> bool:
        return self.states.get(self.primary) is not None

    def refuse_split_brain(self) -> None:
        if len(self.writable) > 1:
            raise RefusedForSafety(f"more than one writable database ({', '.join(self.writable)}): split-brain; "
                                   "fence all but one by hand (SET GLOBAL read_only=ON) and run again")

    def refuse_partition(self) -> None:
        if not self.primary_reachable and self.partition:
            raise RefusedForSafety(self.partition)


def site_at(estate: Estate, host: str, port: int) -> str | None:
    return next((name for name, site in estate.config.sites.items()
                 if site.mysql.host == host and site.mysql.port == port), None)


def _states(estate: Estate) -> dict[str, ServerState | None]:
    states: dict[str, ServerState | None] = {}
    for site in estate.config.sites:
        db = estate.mysql(site)
        try:
            states[site] = db.state(attempts=1) if db.ping() else None
        except Exception:  # not answering is what we record
            states[site] = None
    return states


def _primary(estate: Estate, states: dict[str, ServerState | None], writable: list[str]) -> str:
    if len(writable) == 1:
        return writable[0]
    sources = {site_at(estate, s.replica.source_host, s.replica.source_port)
               for s in states.values() if s is not None and s.replica is not None}
    sources.discard(None)
    return str(sources.pop()) if len(sources) == 1 else estate.config.primary_site


def _partition(estate: Estate, primary: str, states: dict[str, ServerState | None]) -> str | None:
    """Holistic detection, failing closed: a replica still receiving from a source drorch cannot reach."""
    for site, state in states.items():
        if state is None or state.replica is None or site == primary or not state.replica.io_running:
            continue
        source = site_at(estate, state.replica.source_host, state.replica.source_port)
        if source is None or states.get(source) is None:
            return (f"drorch cannot reach {primary}'s database, but {site} still replicates from "
                    f"{state.replica.source_host}:{state.replica.source_port}: a network partition, not a dead "
                    f"primary; {primary} may still take writes. Check the network or fence {primary} first")
    return None


def observe(estate: Estate) -> Topology:
    states = _states(estate)
    writable = [site for site, state in states.items() if state is not None and not state.read_only]
    primary = _primary(estate, states, writable)
    partition = None if states.get(primary) is not None else _partition(estate, primary, states)
    return Topology(states, primary, tuple(writable), partition)
