"""Scheduled drills: which configured drill is due, from its cron schedule and the journal.

The journal is the memory: a drill's last run (scheduled or by hand) is the newest
``drill`` run with its name, so a restarted or newly elected controller neither
repeats a drill nor skips one it missed while nobody led (it runs it once, late).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from cronsim import CronSim

from drorch.config.drill_schema import DrillSchedule
from drorch.config.schema import Config
from drorch.drill.harness import DrillResult
from drorch.engine.executor import Options
from drorch.errors import DrorchError
from drorch.providers.estate import Estate
from drorch.state.journal import Journal, RunRecord
from drorch.state.lease import Keeper


@dataclass(frozen=True)
class DrillState:
    drill: DrillSchedule
    last: RunRecord | None
    next_at: float  # wall clock, UTC seconds


def next_after(schedule: str, after: float) -> float:
    """The first time the cron ``schedule`` (UTC) fires strictly after ``after``."""
    start = datetime.fromtimestamp(after, UTC)
    return next(iter(CronSim(schedule, start))).timestamp()


def states(config: Config, journal: Journal, since: float) -> list[DrillState]:
    """Every configured drill with its last run and next time; ``since`` stands in for a drill never run."""
    runs = [r for r in journal.runs(500) if r.operation == "drill"]
    found = []
    for drill in config.drills:
        last = next((r for r in runs if r.summary.get("schedule") == drill.name), None)
        found.append(DrillState(drill, last, next_after(drill.schedule, last.started_at if last else since)))
    return found


def due(config: Config, journal: Journal, since: float, now: float) -> list[DrillSchedule]:
    """The drills whose next time has come."""
    return [state.drill for state in states(config, journal, since) if state.next_at <= now]


class Scheduler:
    """Runs due drills for ``drorch serve`` (the lease holder), one at a time, between probe rounds.

    A drill that cannot even start (no lab client, a refusal) is tried once per due time, never in a loop:
    the attempt is remembered here even when the journal has no run for it.
    """

    def __init__(self, config: Config, journal: Journal, since: float) -> None:
        self.config, self.journal, self.since = config, journal, since
        self._attempted: dict[str, float] = {}
        self.last_error: str | None = None

    def run_due(self, estate: Estate, lease: Keeper | None, now: float) -> list[str]:
        """Run every drill whose time has come; returns the run ids of those that ran."""
        ran = []
        for state in states(self.config, self.journal, self.since):
            attempted = self._attempted.get(state.drill.name)
            if state.next_at > now or (attempted is not None and attempted >= state.next_at):
                continue
            self._attempted[state.drill.name] = now
            try:
                result = self._run(estate, state.drill, lease)
            except DrorchError as exc:
                self.last_error = f"drill {state.drill.name}: {exc}"
                continue
            ran.append(result.run_id)
        return ran

    def _run(self, estate: Estate, drill: DrillSchedule, lease: Keeper | None) -> DrillResult:
        if drill.mode == "isolated":
            from drorch.drill.isolated import isolated_drill

            return isolated_drill(estate, drill.to, self.journal, schedule=drill.name)
        from drorch.drill.switchover import drill as switchover_drill

        return switchover_drill(estate, drill.to, drill.load, self.journal,
                                options=Options(approvals=frozenset({"*"}), lease=lease), schedule=drill.name)
