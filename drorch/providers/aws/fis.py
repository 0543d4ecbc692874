"""AWS Fault Injection Service: start a chaos drill's experiment, follow it, stop it.

Starting is idempotent: the drill's run id is the client token, so a retried or
resumed start finds the experiment already started instead of breaking twice.
"""

from __future__ import annotations

import time
from typing import Any

import botocore.exceptions

from drorch.errors import OperationFailed
from drorch.providers import retry

ENDED = frozenset({"completed", "stopped", "failed", "cancelled"})


def template_exists(fis: Any, template_id: str) -> bool:
    try:
        retry.call(lambda: fis.get_experiment_template(id=template_id))
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return False
        raise
    return True


def start(fis: Any, template_id: str, client_token: str) -> str:
    """Start an experiment from the template; the id of the one started (first call) with this token."""
    found = retry.call(lambda: fis.start_experiment(experimentTemplateId=template_id, clientToken=client_token,
                                                    tags={"drorch": "chaos-drill"}))
    return str(found["experiment"]["id"])


def state(fis: Any, experiment_id: str) -> dict[str, str]:
    """``{"status": ..., "reason": ...}`` as FIS reports it."""
    found: dict[str, Any] = retry.call(lambda: fis.get_experiment(id=experiment_id))["experiment"]["state"]
    return {"status": str(found.get("status", "")), "reason": str(found.get("reason", ""))}


def wait_acting(fis: Any, experiment_id: str, timeout: float) -> dict[str, str]:
    """Wait until the experiment runs (or already ended well); a failed or stopped one is an error."""
    deadline = time.monotonic() + timeout
    while True:
        now = state(fis, experiment_id)
        if now["status"] in ("running", "completed"):
            return now
        if now["status"] in ENDED:
            raise OperationFailed(f"FIS experiment {experiment_id} ended {now['status']}: {now['reason']}")
        if time.monotonic() > deadline:
            raise OperationFailed(f"FIS experiment {experiment_id} still {now['status']} after {timeout:g} s")
        time.sleep(0.5)


def stop(fis: Any, experiment_id: str) -> str:
    """Stop the experiment unless it already ended; its status afterwards."""
    status = state(fis, experiment_id)["status"]
    if status not in ENDED:
        retry.call(lambda: fis.stop_experiment(id=experiment_id))
        status = state(fis, experiment_id)["status"]
    return status
