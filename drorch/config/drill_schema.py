"""The drills part of ``drorch.yaml``: schedules, and the ground truth and faults a real estate supplies.

On the lab drorch has its own client (``lab load``) and its own faults (``lab chaos``).
On a real estate it cannot know how to write through the service or how to break
the primary, so the estate names commands for that (or an AWS FIS experiment):
``ground_truth`` and ``chaos``; and ``isolated`` names the scratch server an
isolated drill may overwrite.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from drorch.config.base import Model, MySQLEndpoint, PositiveSeconds, check_command, check_cron


class DrillSchedule(Model):
    """A drill ``drorch serve`` runs on its own (the lease holder only), on a cron schedule in UTC."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    to: str = Field(description="the standby the drill goes to (switchover) or rehearses (isolated)")
    mode: Literal["switchover", "isolated"] = Field(default="switchover", description=(
        "switchover (there and back, under load) or isolated (nothing moves); chaos drills start a controller "
        "of their own, so they run by hand or from cron with `drorch drill --mode chaos`"))
    load: float = Field(default=20.0, ge=1, le=500, description="client writes per second (switchover)")
    schedule: str = Field(description="cron, five fields, UTC: e.g. '0 3 * * 1' for Mondays 03:00")

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        return check_cron(value)


class GroundTruth(Model):
    """The estate's own client, started by a drill to write through the service and to check what survived.

    ``load`` runs until drorch sends it SIGTERM, appending one JSON line per write to ``{log}``:
    ``{"seq": 1, "client_ref": "...", "sent": UNIX_TIME, "done": UNIX_TIME, "ok": true, "site": null,
    "error": null}`` (``ok``: the write was acknowledged). ``verify`` prints, one per line, the
    ``client_ref`` of every write in ``{log}`` that the service holds now; drorch counts an
    acknowledged write it does not print as lost.
    """

    load: list[str] = Field(description="command line; {rate} (writes per second) and {log} are filled in")
    verify: list[str] = Field(description="command line; {log} is filled in")
    start_timeout_seconds: PositiveSeconds = Field(default=30.0, description="until the first line in {log}")
    stop_timeout_seconds: PositiveSeconds = Field(default=30.0, description="from SIGTERM until SIGKILL")
    verify_timeout_seconds: PositiveSeconds = 300.0

    @field_validator("load")
    @classmethod
    def _load(cls, value: list[str]) -> list[str]:
        return check_command(value, frozenset({"rate", "log"}), frozenset({"log"}))

    @field_validator("verify")
    @classmethod
    def _verify(cls, value: list[str]) -> list[str]:
        return check_command(value, frozenset({"log"}), frozenset({"log"}))


class FisExperiment(Model):
    """An AWS Fault Injection Service experiment template, started in the AWS site's region."""

    experiment_template_id: str = Field(pattern=r"^[A-Za-z0-9]{1,64}$", description="e.g. EXTabc123...")
    site: str | None = Field(default=None, description="the AWS site whose account and region run it "
                             "(default: the home primary)")


class ChaosFault(Model):
    """How a chaos drill breaks the primary: one command, or an FIS experiment."""

    command: list[str] | None = Field(default=None, description="command line; {site} is filled in")
    fis: FisExperiment | None = None

    @field_validator("command")
    @classmethod
    def _command(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else check_command(value, frozenset({"site"}))

    @model_validator(mode="after")
    def _exactly_one(self) -> ChaosFault:
        if (self.command is None) == (self.fis is None):
            raise ValueError("give exactly one of 'command' (a hook) or 'fis' (an experiment template)")
        return self


class Chaos(Model):
    """The fault a chaos drill injects into the home primary, and how the broken site is brought back."""

    fault: ChaosFault
    heal: list[str] | None = Field(default=None, description=(
        "command line bringing the site back ({site} filled in); without it the drill waits for the site's "
        "database to answer again (an FIS action that ends on its own, an instance that reboots)"))
    timeout_seconds: PositiveSeconds = Field(default=300.0, description="for the fault command, and the heal")

    @field_validator("heal")
    @classmethod
    def _heal(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else check_command(value, frozenset({"site"}))


class ScratchSite(Model):
    """Where an isolated drill promotes its copy of a standby's replica: a server it may overwrite, and an app on it.

    The server must not be one of the estate's databases (checked at load time and again at run time);
    the drill copies the replica's schemas into it, makes it writable, smoke-tests the app, then drops
    the copied schemas and makes it read-only again (the copy is production data: it must not linger).
    """

    mysql: MySQLEndpoint
    app_url: str = Field(description="base URL of an app instance that uses the scratch server")
    start: list[str] | None = Field(default=None, description="command bringing server and app up ({site})")
    stop: list[str] | None = Field(default=None, description="command taking them down again ({site})")
    smoke: list[str] | None = Field(default=None, description=(
        "the app's own smoke test against {app_url}; exit 0 = passed (the health check runs in any case)"))

    @field_validator("start", "stop")
    @classmethod
    def _site_commands(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else check_command(value, frozenset({"site"}))

    @field_validator("smoke")
    @classmethod
    def _smoke(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else check_command(value, frozenset({"app_url"}))


class Isolated(Model):
    """Isolated drills on an estate: a scratch place per standby (the lab starts its own when absent)."""

    scratch: dict[str, ScratchSite] = Field(description="standby site -> its scratch server and app")
    timeout_seconds: PositiveSeconds = Field(default=300.0, description="for each command, and for readiness")
