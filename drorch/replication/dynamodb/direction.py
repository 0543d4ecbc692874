"""Who ships to whom: the source of each ``follow-primary`` table, and the routes of every stream table.

A ``follow-primary`` table has one source site at a time, recorded in the state
store (default: the config's primary site); its changes go to every other site,
whose own streams are only *tracked* (read and checkpointed, not shipped), so that
when a failover turns the direction round the new source ships from that moment on
instead of replaying a day of echoes. A ``both`` table ships every site's stream to
every other site. ``global-table`` tables are AWS's to replicate and never appear.
"""

from __future__ import annotations

from dataclasses import dataclass

from drorch.config.schema import Config, DynamoDBTable
from drorch.errors import InvalidInput
from drorch.state.checkpoints import Checkpoints

ALL = "all"


@dataclass(frozen=True)
class Route:
    """``ships``: site whose stream is shipped -> the sites it goes to; ``tracked``: streams read, not shipped."""

    table: DynamoDBTable
    ships: dict[str, tuple[str, ...]]
    tracked: tuple[str, ...]


@dataclass(frozen=True)
class SourceChange:
    table: str
    before: str
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after


def stream_tables(config: Config, only: str | None = None) -> list[DynamoDBTable]:
    """The ``mode: stream`` tables (or just ``only``, which must be one of them)."""
    tables = [t for t in config.data.dynamodb.tables if t.mode == "stream"]
    if only is None or only == ALL:
        return tables
    chosen = [t for t in tables if t.name == only]
    if not chosen:
        known = ", ".join(t.name for t in tables) or "none"
        raise InvalidInput(f"--table {only}: not a data.dynamodb.tables entry with mode: stream (known: {known})")
    return chosen


def source_of(config: Config, checkpoints: Checkpoints, table: DynamoDBTable) -> str:
    """The site a ``follow-primary`` table replicates from now."""
    recorded = checkpoints.source(table.name)
    if recorded in table.sites:
        return recorded
    return config.primary_site if config.primary_site in table.sites else next(iter(table.sites))


def route(config: Config, checkpoints: Checkpoints, table: DynamoDBTable) -> Route:
    sites = tuple(table.sites)
    if table.direction == "both":
        return Route(table, {site: tuple(s for s in sites if s != site) for site in sites}, ())
    source = source_of(config, checkpoints, table)
    return Route(table, {source: tuple(s for s in sites if s != source)}, tuple(s for s in sites if s != source))


def planned_sources(config: Config, checkpoints: Checkpoints, table: str | None, site: str) -> list[SourceChange]:
    """What ``set_source`` would record, changing nothing; InvalidInput when it cannot."""
    config.site(site)
    candidates = [t for t in stream_tables(config, table) if t.direction == "follow-primary"]
    if table not in (None, ALL):
        chosen = stream_tables(config, table)[0]
        if chosen.direction != "follow-primary":
            raise InvalidInput(f"table {chosen.name} replicates in both directions: it has no single source to set")
        if site not in chosen.sites:
            raise InvalidInput(f"table {chosen.name} has no copy at {site} (its sites: {', '.join(chosen.sites)})")
    return [SourceChange(t.name, source_of(config, checkpoints, t), site) for t in candidates if site in t.sites]


def set_source(config: Config, table: str | None, site: str,
               checkpoints: Checkpoints | None = None) -> list[SourceChange]:
    """Make ``site`` the source of ``table`` (None or ``all``: every ``follow-primary`` stream table it holds).

    Idempotent: recording the current source again changes nothing. Tables with no copy
    at ``site`` are left as they are when ``all`` is asked. A running replicator picks
    the new direction up at its next round.
    """
    from drorch.state.checkpoints import open_checkpoints

    store = checkpoints or open_checkpoints(config)
    changes = planned_sources(config, store, table, site)
    for change in changes:
        if change.changed or store.source(change.table) is None:
            store.set_source(change.table, site)
    return changes


def follow_writable(config: Config, checkpoints: Checkpoints, writable: list[str]) -> list[SourceChange]:
    """Turn every ``follow-primary`` table towards the one writable database, if there is exactly one.

    A controller that takes the lead asks this first: the one before it may have died between
    promoting a database and turning the tables round, or turned them round in a state file of
    its own (another host). With no writable database, or two, nothing is changed.
    """
    if len(writable) != 1:
        return []
    return [change for change in set_source(config, None, writable[0], checkpoints) if change.changed]
