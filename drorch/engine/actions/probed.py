"""Actions that check through a probe (DynamoDB replication, VPN tunnels) read the estate the way
``drorch status`` does, so a playbook's check and the dashboard never disagree."""

from __future__ import annotations

from drorch.errors import InvalidInput, OperationFailed
from drorch.probes.result import ProbeResult


def probed(result: ProbeResult | None, missing: str, unreadable: str) -> ProbeResult:
    """The probe's result; InvalidInput(``missing``) when the site has nothing of the kind configured,
    OperationFailed when the probe could not read it."""
    if result is None:
        raise InvalidInput(missing)
    if result.error is not None:
        raise OperationFailed(f"{unreadable}: {result.error}")
    return result
