"""AWS Fault Injection Service on the lab: experiment templates whose actions really break a site.

moto keeps FIS experiments as records only. The lab seeds, in each AWS site's
region, a template that does what an estate's own template would do to a
self-managed database host: two ``aws:ssm:send-command`` actions running the
``AWSFIS-Run-Kill-Process`` document, one killing ``mariadbd`` with SIGKILL and
one killing the app. Starting an experiment from such a template (tagged with
its site) makes the lab's AWS server carry the actions out on the lab's real
processes, through ``lab chaos``; an action it cannot carry out fails the
experiment, as FIS would. So a chaos drill configured with an FIS experiment
template id runs end to end here, through unmodified boto3.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

SITE_TAG = "drorch-lab-site"
KILL_PROCESS = "AWSFIS-Run-Kill-Process"
PROCESSES = {"mariadbd": "database", "demo-app": "app"}


def _action(region: str, process: str, signal: str) -> dict[str, Any]:
    return {
        "actionId": "aws:ssm:send-command",
        "description": f"kill {process} with {signal}",
        "parameters": {"documentArn": f"arn:aws:ssm:{region}::document/{KILL_PROCESS}",
                       "documentParameters": json.dumps({"ProcessName": process, "Signal": signal}),
                       "duration": "PT1M"},
        "targets": {"Instances": "site-hosts"},
    }


def seed_templates(fis_for_region: Any, account_id: str, sites: dict[str, str]) -> dict[str, str]:
    """One kill-the-primary template per AWS site (site -> region); returns site -> template id."""
    found = {}
    for site, region in sites.items():
        made = fis_for_region(region).create_experiment_template(
            clientToken=f"drorch-lab-{site}",
            description=f"drorch lab: SIGKILL {site}'s database and kill its app",
            roleArn=f"arn:aws:iam::{account_id}:role/drorch-lab-fis",
            stopConditions=[{"source": "none"}],
            targets={"site-hosts": {"resourceType": "aws:ec2:instance", "resourceTags": {SITE_TAG: site},
                                    "selectionMode": "ALL"}},
            actions={"kill-database": _action(region, "mariadbd", "SIGKILL"),
                     "kill-app": _action(region, "demo-app", "SIGKILL")},
            tags={SITE_TAG: site})
        found[site] = str(made["experimentTemplate"]["id"])
    return found


def _act(lab_dir: Path, template: Any, site: str) -> None:
    """Carry out the template's actions on the lab's processes; ValueError for one the lab cannot do."""
    from drorch.lab import chaos
    from drorch.lab.control import open_lab

    lab = open_lab(lab_dir)
    for name, action in template.actions.items():
        parameters = action.get("parameters", {})
        document = str(parameters.get("documentArn", "")).rsplit("/", 1)[-1]
        process = json.loads(parameters.get("documentParameters", "{}")).get("ProcessName")
        if action.get("actionId") != "aws:ssm:send-command" or document != KILL_PROCESS or process not in PROCESSES:
            raise ValueError(f"action {name}: the lab carries out only {KILL_PROCESS} of "
                             f"{' or '.join(PROCESSES)}")
        if PROCESSES[process] == "database":
            chaos.kill_db(lab, site)
        else:
            chaos.stop_app(lab, site)


def install(lab_dir: Path) -> None:
    """Make moto's FIS carry out the lab's templates when an experiment starts (once per experiment)."""
    from moto.fis.models import FISBackend

    original = FISBackend.start_experiment
    lock = threading.Lock()

    def start_experiment(backend: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        with lock:
            known = set(backend.experiments)
            started: dict[str, Any] = original(backend, *args, **kwargs)
            experiment = backend.experiments[started["id"]]
            if experiment.id in known:  # the same client token again: already carried out
                return started
            template = backend.experiment_templates[experiment.experiment_template_id]
            site = backend.tagger.get_tag_dict_for_resource(template.arn).get(SITE_TAG)
            if site is None:
                return started
            try:
                _act(lab_dir, template, site)
            except (ValueError, OSError) as exc:
                experiment.status = "failed"
                started["state"] = {"status": "failed", "reason": str(exc)}
            return started

    setattr(FISBackend, "start_experiment", start_experiment)  # noqa: B010 (patching a class on purpose)
