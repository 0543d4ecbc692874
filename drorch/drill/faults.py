"""The fault a chaos drill injects into the home primary, and how the broken site comes back.

On the lab (no ``chaos`` in the config): the site's database is SIGKILLed and its
app stopped, then both are started again. On any estate: the configured hook
command, or an AWS FIS experiment started with the drill's run id as its client
token (so a retried start never breaks the site twice). Coming back is the
configured ``heal`` command, and then in every case a bounded wait until the
site's database answers again: the failback needs it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Protocol

from drorch.config.drill_schema import Chaos
from drorch.drill.commands import Command
from drorch.drill.harness import lab_of
from drorch.errors import InvalidInput, OperationFailed
from drorch.providers.aws import fis
from drorch.providers.estate import Estate


class Fault(Protocol):
    def inject(self, site: str, token: str) -> dict[str, Any]:
        """Break ``site``; ``token`` (the drill's run id) makes a repeated start the same start."""
        ...

    def heal(self, site: str) -> dict[str, Any]: ...


def fault_for(estate: Estate, drill_dir: Path) -> Fault:
    """The configured fault (``chaos``), else the lab's; InvalidInput (nothing changed) when neither works."""
    config = estate.config
    if config.chaos is None:
        try:
            return LabFault(lab_of(estate))
        except InvalidInput:
            raise InvalidInput(f"{config.source_path or 'the config'}: chaos: a chaos drill needs a fault to inject, "
                               "and this config is not the lab's; add `chaos: {fault: {command: [...]}}` or "
                               "`chaos: {fault: {fis: {experiment_template_id: ...}}}` (README: Drills on a real "
                               "estate)") from None
    fault = ConfiguredFault(estate, config.chaos, drill_dir)
    fault.check()
    return fault


class LabFault:
    """``lab chaos``: SIGKILL the database and stop the app; start both again."""

    def __init__(self, lab: Any) -> None:
        self.lab = lab

    def inject(self, site: str, token: str) -> dict[str, Any]:
        from drorch.lab import chaos

        return {"database_killed": chaos.kill_db(self.lab, site), "app_stopped": chaos.stop_app(self.lab, site)}

    def heal(self, site: str) -> dict[str, Any]:
        from drorch.lab import chaos

        return {"database_started": chaos.start_db(self.lab, site), "app_started": chaos.start_app(self.lab, site)}


class ConfiguredFault:
    """The estate's own fault: a hook command or an FIS experiment; healed by a command or by waiting."""

    def __init__(self, estate: Estate, chaos: Chaos, drill_dir: Path) -> None:
        source = estate.config.source_path
        cwd = source.parent if source is not None else Path.cwd()
        output = drill_dir / f"chaos-{int(time.time())}.out"
        self.estate, self.chaos, self.source = estate, chaos, source
        self._hook = None if chaos.fault.command is None else Command(
            "chaos.fault.command", tuple(chaos.fault.command), cwd, output)
        self._heal = None if chaos.heal is None else Command("chaos.heal", tuple(chaos.heal), cwd, output)
        self._experiment: str | None = None

    def _fis(self) -> Any:
        experiment = self.chaos.fault.fis
        assert experiment is not None
        return self.estate.aws(experiment.site or self.estate.config.primary_site, "fis")

    def check(self) -> None:
        for command in (self._hook, self._heal):
            if command is not None:
                command.check(self.source)
        experiment = self.chaos.fault.fis
        if experiment is not None and not fis.template_exists(self._fis(), experiment.experiment_template_id):
            raise InvalidInput(f"{self.source or 'the config'}: chaos.fault.fis.experiment_template_id: no FIS "
                               f"experiment template '{experiment.experiment_template_id}' in that site's region; "
                               "name an existing template (aws fis list-experiment-templates)")

    def inject(self, site: str, token: str) -> dict[str, Any]:
        timeout = self.chaos.timeout_seconds
        if self._hook is not None:
            self._hook.filled(site=site).run(timeout)
            return {"hook": self._hook.program}
        experiment = self.chaos.fault.fis
        assert experiment is not None
        client = self._fis()
        self._experiment = fis.start(client, experiment.experiment_template_id, f"drorch-{token}")
        return {"fis_experiment": self._experiment, **fis.wait_acting(client, self._experiment, timeout)}

    def heal(self, site: str) -> dict[str, Any]:
        done: dict[str, Any] = {}
        if self._experiment is not None:
            done["fis_experiment"] = {"id": self._experiment, "status": fis.stop(self._fis(), self._experiment)}
        if self._heal is not None:
            self._heal.filled(site=site).run(self.chaos.timeout_seconds)
            done["heal"] = self._heal.program
        done["database_answers_after_seconds"] = self._wait_database(site)
        return done

    def _wait_database(self, site: str) -> float:
        waited = self.estate.mysql(site).wait_answering(self.chaos.timeout_seconds)
        if waited is None:
            raise OperationFailed(f"{site}'s database does not answer {self.chaos.timeout_seconds:g} s after the "
                                  f"fault was healed: bring it back, then run `drorch failback --to {site}`")
        return waited
